/**
 * dns check (DESIGN §4): per resolver, A and AAAA of the mail host and MX of the domain; and
 * the zone's authoritative servers asked directly (RD=0), labelled `auth:<server>`. Each
 * answer set is classified against the plan (old / new / both / other / none / error) with
 * its remaining TTL, RCODE, duration and transport.
 *
 * MX answers name hosts, not addresses: an MX set that includes the mail host takes the side
 * of the same resolver's A (else AAAA) answer in this run; one that does not is `other`.
 */
import { isIP } from 'node:net';
import type { CheckContext, CheckSpec } from '../check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { AnswerSide, DnsResult } from '../../protocol/results.js';
import { assertRcode, minTtl, recordsOf, serverClient, type DnsClient, type DnsResponse } from '../dns/client.js';
import { answerKey, canonicalIp, classifyAddresses } from '../dns/classify.js';
import { DnsError } from '../dns/errors.js';
import { clientFor, dnsSettings, failureOf, lookupClient, secs, type DnsSettings } from '../dns/lookup.js';
import type { HostPort, ResolverSpec } from '../dns/resolvers.js';

/** A resolver as the plan gives it; `resolverName` is its name on panels (default: its label). */
export type DnsTarget = { kind: 'resolver'; resolver: ResolverSpec; resolverName?: string } | { kind: 'authoritative' };
type QT = DnsSettings['types'][number];

interface Labelled {
  label: string;
  /** The plan's name for the resolver (default: the label). */
  name?: string;
  client: DnsClient;
}

function transportOf(label: string): DnsResult['transport'] {
  if (/^https?:\/\//.test(label)) return 'doh';
  if (label.startsWith('tls://')) return 'dot';
  return label.startsWith('tcp://') ? 'tcp' : 'udp';
}

/** One query through one resolver, as a DnsResult (a failure is data). */
async function queryOne(l: Labelled, authoritative: boolean, qtype: QT, name: string, plan: PlanConfig, ctx: CheckContext): Promise<DnsResult> {
  const startedAt = ctx.now();
  const t0 = performance.now();
  const base = { type: 'dns' as const, startedAt, resolver: l.label, resolverName: l.name ?? l.label, authoritative, name, qtype };
  let r: DnsResponse;
  try {
    r = await l.client.query(name, qtype, { recursive: !authoritative, signal: ctx.signal });
    if (authoritative && !r.aa && r.rcode === 0) throw new DnsError('DNS_BAD_REPLY', `${r.server} is not authoritative for ${name} (AA=0)`, r.rcodeName);
    assertRcode(r, `${qtype} ${name}`);
  } catch (e) {
    const f = failureOf('query', e);
    return {
      ...base,
      durationSeconds: secs(performance.now() - t0),
      ok: false,
      phase: f.phase,
      errorClass: f.errorClass,
      code: f.code,
      message: f.message,
      transport: transportOf(l.label),
      rcode: f.rcode,
      answers: [],
      ttl: null,
      side: f.errorClass === 'nxdomain' ? 'none' : 'error',
    };
  }
  const recs = recordsOf(r, qtype);
  const answers =
    qtype === 'MX'
      ? recs.map((m) => `${m.priority ?? 0} ${m.value.replace(/\.$/, '')}`).sort()
      : answerKey(recs.map((a) => a.value)).split(',').filter((x) => x !== '');
  const side: AnswerSide = qtype === 'MX' ? (recs.length === 0 ? 'none' : 'other') : classifyAddresses(plan, answers);
  return {
    ...base,
    durationSeconds: secs(r.durationMs),
    ok: true,
    transport: r.transport,
    rcode: r.rcodeName,
    answers: answers.slice(0, 64),
    ttl: minTtl(recs),
    side,
  };
}

/** MX side: follows the A (else AAAA) answer of the same resolver when the MX names the mail host. */
function settleMx(results: DnsResult[], plan: PlanConfig): void {
  const host = plan.cutover.mail_host.toLowerCase().replace(/\.$/, '');
  const addr = results.find((r) => r.qtype === 'A' && r.ok && r.side !== 'none') ?? results.find((r) => r.qtype === 'AAAA' && r.ok && r.side !== 'none');
  for (const r of results) {
    if (r.qtype !== 'MX' || !r.ok || r.answers.length === 0) continue;
    const names = r.answers.map((a) => a.split(' ')[1]?.toLowerCase() ?? '');
    r.side = !names.includes(host) ? 'other' : addr ? addr.side : 'none';
  }
}

async function queryAll(l: Labelled, authoritative: boolean, s: DnsSettings, plan: PlanConfig, ctx: CheckContext): Promise<DnsResult[]> {
  const results = await Promise.all(
    s.types.map((t) => queryOne(l, authoritative, t, t === 'MX' ? plan.cutover.domain : plan.cutover.mail_host, plan, ctx)),
  );
  settleMx(results, plan);
  return results;
}

/**
 * The authoritative servers: `plan.probes.authoritative` (host or host:port; names resolved
 * through the lookup resolver), else the NS records of the zone (walking up from the mail
 * host's parent to the domain), each resolved to its addresses.
 */
export async function authoritativeServers(plan: PlanConfig, s: DnsSettings, signal?: AbortSignal): Promise<{ label: string; server: HostPort }[]> {
  const lookup = lookupClient(s);
  const addressesOf = async (host: string): Promise<string[]> => {
    if (isIP(host)) return [host];
    const out: string[] = [];
    for (const t of ['A', 'AAAA'] as const) {
      try {
        const r = await lookup.query(host, t, { signal });
        if (r.rcode === 0) out.push(...recordsOf(r, t).map((x) => x.value));
      } catch (e) {
        if (t === 'A') throw e;
      }
    }
    return out;
  };
  const out: { label: string; server: HostPort }[] = [];
  if (plan.probes.authoritative && plan.probes.authoritative.length > 0) {
    for (const a of plan.probes.authoritative) {
      for (const ip of await addressesOf(a.host)) out.push({ label: `auth:${a.label}`, server: { host: ip, port: a.port } });
    }
    return out;
  }
  const labels = plan.cutover.mail_host.toLowerCase().replace(/\.$/, '').split('.');
  const domain = plan.cutover.domain.toLowerCase().replace(/\.$/, '');
  for (let i = 1; i < labels.length - 1; i++) {
    const zone = labels.slice(i).join('.');
    const r = await lookup.query(zone, 'NS', { signal });
    assertRcode(r, `NS ${zone}`, true);
    const ns = recordsOf(r, 'NS').map((x) => x.value.replace(/\.$/, ''));
    if (r.rcode === 0 && ns.length > 0) {
      for (const n of ns.sort()) {
        const ips = await addressesOf(n);
        // Several addresses of one name get their own labels so each is measured.
        for (const ip of ips) out.push({ label: ips.length > 1 ? `auth:${n}/${canonicalIp(ip)}` : `auth:${n}`, server: { host: ip, port: 53 } });
      }
      return out;
    }
    if (zone === domain) break;
  }
  throw new DnsError('DNS_NO_AUTHORITATIVE', `no NS records found for ${plan.cutover.mail_host} up to ${domain}`);
}

export async function runDns(target: DnsTarget, s: DnsSettings, ctx: CheckContext): Promise<DnsResult[]> {
  const plan = ctx.plan;
  if (target.kind === 'resolver') {
    const r = target.resolver;
    return queryAll({ label: r.label, name: target.resolverName ?? r.name ?? r.label, client: clientFor(r, s) }, false, s, plan, ctx);
  }
  const startedAt = ctx.now();
  const t0 = performance.now();
  let servers: { label: string; server: HostPort }[];
  try {
    servers = await authoritativeServers(plan, s, ctx.signal);
  } catch (e) {
    const f = failureOf('discover', e);
    return s.types.map((qtype) => ({
      type: 'dns' as const,
      startedAt,
      durationSeconds: secs(performance.now() - t0),
      ok: false,
      phase: f.phase,
      errorClass: f.errorClass,
      code: f.code,
      message: f.message,
      resolver: 'auth:none',
      authoritative: true,
      name: qtype === 'MX' ? plan.cutover.domain : plan.cutover.mail_host,
      qtype,
      transport: 'udp' as const,
      rcode: f.rcode,
      answers: [],
      ttl: null,
      side: 'error' as const,
    }));
  }
  const per = await Promise.all(
    servers.map((sv) => queryAll({ label: sv.label, client: serverClient(sv.server, sv.label, { timeoutMs: s.queryTimeoutMs, ednsPayload: s.ednsPayload }) }, true, s, plan, ctx)),
  );
  return per.flat();
}

export const dnsCheck: CheckSpec<DnsTarget, DnsSettings> = {
  type: 'dns',
  run: runDns,
  targets(plan) {
    const s = dnsSettings(plan);
    return [
      ...plan.probes.resolvers.map((resolver) => ({ key: `resolver:${resolver.label}`, target: { kind: 'resolver' as const, resolver, resolverName: resolver.name ?? resolver.label }, settings: s })),
      { key: 'authoritative', target: { kind: 'authoritative' as const }, settings: s },
    ];
  },
};

export default dnsCheck;
