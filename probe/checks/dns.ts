/**
 * dns check: per resolver, A and AAAA of the mail host and MX of the domain; and the zone's
 * authoritative servers asked directly (RD=0), labelled `auth:<server>`. Each answer set is
 * classified against the plan (old / new / both / other / none / error) with its remaining TTL,
 * RCODE, duration and transport.
 *
 * MX answers name hosts, not addresses: an MX set that includes the mail host takes the side
 * of the same resolver's A (else AAAA) answer in this run; one that does not is `other`.
 *
 * Every configured authoritative server reports every run: one whose name has no address (or
 * cannot be looked up) yields failed `auth:<name>` results (dns_auth_unresolved, or the lookup's
 * failure), so the ttl analysis never goes blind in silence.
 */
import type { CheckContext, CheckSpec } from '../check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { AnswerSide, Failure } from '../../protocol/checks/common.js';
import { failedDns, type DnsQuery, type DnsResult, type DnsTarget } from '../../protocol/checks/dns.js';
import { failure } from '../../protocol/failures.js';
import { assertRcode, minTtl, recordsOf, serverClient, type DnsClient, type DnsResponse } from '../dns/client.js';
import { answerKey, canonicalIp, classifyAddresses, type Servers } from '../dns/classify.js';
import { DnsError } from '../dns/errors.js';
import { clientFor, dnsSettings, lookupClient, rcodeOf, secs, type DnsSettings } from '../dns/lookup.js';
import type { AuthoritativeSpec } from '../../config/specs.js';
import type { HostPort, ResolverSpec } from '../dns/resolvers.js';
import { CheckFailure, failureOf } from '../errors.js';
import { bareName, withoutRootDot } from '../../protocol/dns-name.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { isIP } = process.getBuiltinModule('node:net');

export type { DnsTarget };

/** What the dns check needs: the DNS settings, the names it asks for and the servers it classifies against. */
export interface DnsCheckSettings extends DnsSettings {
  mailHost: string;
  domain: string;
  servers: Servers;
  /** probes.resolvers by label. */
  resolvers: ReadonlyMap<string, ResolverSpec>;
  /** probes.authoritative; empty: the zone's NS records. */
  authoritative: readonly AuthoritativeSpec[];
}

interface Labelled {
  label: string;
  /** The plan's name for the resolver (default: the label). */
  name: string;
  client: DnsClient;
}

/** One query through one resolver, as a DnsResult (a failure is data). */
async function queryOne(l: Labelled, authoritative: boolean, q: DnsQuery, s: DnsCheckSettings, ctx: CheckContext): Promise<DnsResult> {
  const { name, qtype } = q;
  const startedAt = ctx.now();
  const t0 = performance.now();
  let r: DnsResponse;
  try {
    r = await l.client.query(name, qtype, { recursive: !authoritative, signal: ctx.signal });
    if (authoritative && !r.aa && r.rcode === 0) throw new DnsError('dns_bad_reply', `${r.server} is not authoritative for ${name} (AA=0)`, r.rcodeName);
    assertRcode(r, `${qtype} ${name}`);
  } catch (e) {
    return failedDns(
      l.label,
      l.name,
      authoritative,
      q,
      { startedAt, durationSeconds: secs(performance.now() - t0), failure: failureOf('query', e) },
      rcodeOf(e),
    );
  }
  const recs = recordsOf(r, qtype);
  const answers =
    qtype === 'MX'
      ? recs.map((m) => `${m.priority ?? 0} ${withoutRootDot(m.value)}`).sort()
      : answerKey(recs.map((a) => a.value))
          .split(',')
          .filter((x) => x !== '');
  const side: AnswerSide = qtype === 'MX' ? (recs.length === 0 ? 'none' : 'other') : classifyAddresses(s.servers, answers);
  return {
    type: 'dns',
    startedAt,
    resolver: l.label,
    resolverName: l.name,
    authoritative,
    name,
    qtype,
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
function settleMx(results: DnsResult[], mailHost: string): void {
  const host = bareName(mailHost);
  const addr = results.find((r) => r.qtype === 'A' && r.ok && r.side !== 'none') ?? results.find((r) => r.qtype === 'AAAA' && r.ok && r.side !== 'none');
  for (const r of results) {
    if (r.qtype !== 'MX' || !r.ok || r.answers.length === 0) continue;
    const names = r.answers.map((a) => a.split(' ')[1]?.toLowerCase() ?? '');
    r.side = !names.includes(host) ? 'other' : addr ? addr.side : 'none';
  }
}

async function queryAll(l: Labelled, authoritative: boolean, queries: readonly DnsQuery[], s: DnsCheckSettings, ctx: CheckContext): Promise<DnsResult[]> {
  const results = await Promise.all(queries.map((q) => queryOne(l, authoritative, q, s, ctx)));
  settleMx(results, s.mailHost);
  return results;
}

/** One authoritative server to ask, or why it cannot be asked (its results fail under its label). */
export type AuthServer = { label: string; server: HostPort } | { label: string; failure: Failure; rcode: string };

/** The label of a configured authoritative server. */
export const authLabel = (a: AuthoritativeSpec): string => `auth:${a.label}`;

/**
 * The authoritative servers: `probes.authoritative` (host or host:port; names resolved through
 * the lookup resolver, each one that cannot be asked with the reason), else the NS records of
 * the zone (walking up from the mail host's parent to the domain), each resolved to its
 * addresses. Throws when NS discovery itself fails.
 */
export async function authoritativeServers(configured: readonly AuthoritativeSpec[], s: DnsCheckSettings, signal?: AbortSignal): Promise<AuthServer[]> {
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
  const out: AuthServer[] = [];
  if (configured.length > 0) {
    for (const hp of configured) {
      const label = authLabel(hp);
      let ips: string[];
      try {
        ips = await addressesOf(hp.host);
      } catch (e) {
        out.push({ label, failure: failureOf('discover', e), rcode: rcodeOf(e) });
        continue;
      }
      if (ips.length === 0)
        out.push({ label, failure: failure('discover', 'dns_auth_unresolved', `${hp.host} has no A or AAAA record at ${s.lookupResolver.label}`), rcode: '-' });
      for (const ip of ips) out.push({ label, server: { host: ip, port: hp.port } });
    }
    return out;
  }
  const labels = bareName(s.mailHost).split('.');
  const domain = bareName(s.domain);
  for (let i = 1; i < labels.length - 1; i++) {
    const zone = labels.slice(i).join('.');
    const r = await lookup.query(zone, 'NS', { signal });
    assertRcode(r, `NS ${zone}`, true);
    const ns = recordsOf(r, 'NS').map((x) => withoutRootDot(x.value));
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
  throw new DnsError('dns_no_authoritative', `no NS records found for ${s.mailHost} up to ${domain}`);
}

export async function runDns(target: DnsTarget, s: DnsCheckSettings, ctx: CheckContext): Promise<DnsResult[]> {
  if (target.kind === 'resolver') {
    const spec = s.resolvers.get(target.resolver);
    if (!spec) throw new CheckFailure('bad_spec', `resolver "${target.resolver}" is not in probes.resolvers`, 'query');
    const client = clientFor(spec, s);
    return queryAll({ label: target.resolver, name: target.resolverName ?? target.resolver, client }, false, target.queries, s, ctx);
  }
  const startedAt = ctx.now();
  const t0 = performance.now();
  let servers: AuthServer[];
  try {
    servers = await authoritativeServers(s.authoritative, s, ctx.signal);
  } catch (e) {
    const run = { startedAt, durationSeconds: secs(performance.now() - t0), failure: failureOf('discover', e) };
    return target.queries.map((q) => failedDns('auth:none', 'auth:none', true, q, run, rcodeOf(e)));
  }
  const per = await Promise.all(
    servers.map((sv) => {
      if ('failure' in sv) {
        const run = { startedAt, durationSeconds: secs(performance.now() - t0), failure: sv.failure };
        return target.queries.map((q) => failedDns(sv.label, sv.label, true, q, run, sv.rcode));
      }
      return queryAll(
        { label: sv.label, name: sv.label, client: serverClient(sv.server, sv.label, { timeoutMs: s.queryTimeoutMs, ednsPayload: s.ednsPayload }) },
        true,
        target.queries,
        s,
        ctx,
      );
    }),
  );
  return per.flat();
}

export function dnsCheckSettings(plan: PlanConfig): DnsCheckSettings {
  return {
    ...dnsSettings(plan),
    mailHost: plan.cutover.mail_host,
    domain: plan.cutover.domain,
    servers: plan.cutover.servers,
    resolvers: new Map(plan.probes.resolvers.map((r) => [r.label, r])),
    authoritative: plan.probes.authoritative ?? [],
  };
}

/** The questions of every dns target: each record type of probes.dns.types (MX of the domain, A and AAAA of the mail host). */
export function dnsQueries(s: DnsCheckSettings): DnsQuery[] {
  return s.types.map((qtype) => ({ name: qtype === 'MX' ? s.domain : s.mailHost, qtype }));
}

export const dnsCheck: CheckSpec<'dns', DnsCheckSettings> = {
  type: 'dns',
  run: runDns,
  targets(plan) {
    const settings = dnsCheckSettings(plan);
    const queries = dnsQueries(settings);
    return [
      ...plan.probes.resolvers.map((r) => ({
        key: `resolver:${r.label}`,
        target: { kind: 'resolver' as const, resolver: r.label, resolverName: r.name ?? r.label, queries },
        settings,
      })),
      { key: 'authoritative', target: { kind: 'authoritative' as const, servers: settings.authoritative.map(authLabel), queries }, settings },
    ];
  },
};
