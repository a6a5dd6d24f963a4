/**
 * auth check: the mail-authentication records, one result per method + subject.
 *
 * - spf: the probe's own RFC 7208 evaluation (probe/auth/spf.ts, over the lookup resolver) of
 *   the envelope domain (`cutover.spf_domain` ?? domain) for every server IP: during the
 *   overlap both must pass;
 * - dkim: the key of each selector is published and parses (multi-string TXT joined without
 *   separator), RSA keys at least `dkim_min_bits` long;
 * - dmarc: exactly one `v=DMARC1` record with a valid policy;
 * - mta-sts: if `_mta-sts` is published, the policy (fetched over node:https from `mta_sts_url`,
 *   read by probe/auth/mta-sts.ts) lists the mail host; no policy published passes;
 * - tlsa: TLSA records at `_25._tcp.<mail host>` (reported; pass = present).
 *
 * A record that is missing or broken is a finding (ok, pass false); a DNS or HTTP failure
 * that prevents the verdict is a failed result. No mail-authentication library is loaded here
 * (mailauth's SPF and MTA-STS modules pull in joi and its tools).
 */
import { createPublicKey } from 'node:crypto';
import { parseStsPolicy, policyListsMx, stsPolicyId, type StsPolicy } from '../auth/mta-sts.js';
import { checkSpf as evaluateSpf } from '../auth/spf.js';
import { request } from '../http-client.js';
import type { CheckContext, CheckSpec } from '../check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { AuthResult, AuthTarget } from '../../protocol/checks/auth.js';
import { assertRcode, recordsOf, type DnsClient } from '../dns/client.js';
import { DnsError } from '../dns/errors.js';
import { dnsSettings, lookupClient, secs, type DnsSettings } from '../dns/lookup.js';
import { failureOf } from '../errors.js';
import { text } from '../../protocol/checks/common.js';
import { bareName } from '../../protocol/dns-name.js';

/** The subject is the IP (spf), the selector (dkim), the domain (dmarc, mta-sts) or the name (tlsa). */
export type { AuthTarget };

export interface AuthSettings extends DnsSettings {
  /** MTA-STS policy URL with `{domain}`. */
  mtaStsUrl: string;
  dkimMinBits: number;
  mailHost: string;
  /** The domain DKIM keys are published under. */
  domain: string;
  /** The envelope domain SPF is evaluated for (cutover.spf_domain, else the domain). */
  spfDomain: string;
}

interface Verdict {
  pass: boolean;
  detail: string;
  /** mta-sts: the policy's mode. */
  mode?: 'enforce' | 'testing' | 'none';
}

/** TXT records at a name (strings of each record joined without separator); [] for NXDOMAIN/NODATA. */
async function txt(client: DnsClient, name: string, signal: AbortSignal): Promise<string[]> {
  const r = await client.query(name, 'TXT', { signal });
  assertRcode(r, `TXT ${name}`, true);
  return recordsOf(r, 'TXT').map((t) => (t.strings ?? [t.value]).join(''));
}

/** `k=v; k=v` tags (DKIM, DMARC, MTA-STS TXT). */
export function parseTags(record: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of record.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) m.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return m;
}

async function checkSpf(ip: string, s: AuthSettings, client: DnsClient, ctx: CheckContext): Promise<Verdict> {
  const domain = s.spfDomain;
  const v = await evaluateSpf({ ip, domain, sender: `postmaster@${domain}`, helo: s.mailHost }, client, { signal: ctx.signal });
  if (v.result === 'temperror') throw new DnsError('spf_temperror', `SPF of ${domain} for ${ip}: ${v.reason}`);
  return { pass: v.result === 'pass', detail: `${v.result}${v.record ? ` (${v.record})` : ''}` };
}

/** Parses a DKIM key record; returns why it is broken, or the key description. */
export function parseDkimKey(record: string, minBits: number): Verdict {
  const tags = parseTags(record);
  const v = tags.get('v');
  if (v !== undefined && v.toUpperCase() !== 'DKIM1') return { pass: false, detail: `unknown version v=${v}` };
  const p = (tags.get('p') ?? '').replace(/\s+/g, '');
  if (!tags.has('p')) return { pass: false, detail: 'no p= tag' };
  if (p === '') return { pass: false, detail: 'key revoked (empty p=)' };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(p)) return { pass: false, detail: 'p= is not base64' };
  const k = (tags.get('k') ?? 'rsa').toLowerCase();
  const raw = Buffer.from(p, 'base64');
  try {
    const der = k === 'ed25519' && raw.length === 32 ? Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]) : raw;
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== k) return { pass: false, detail: `k=${k} but the key is ${key.asymmetricKeyType ?? 'unknown'}` };
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (k === 'rsa' && (bits ?? 0) < minBits) return { pass: false, detail: `rsa key of ${bits ?? 0} bits is shorter than ${minBits}` };
    return { pass: true, detail: k === 'rsa' ? `rsa ${bits ?? 0} bits` : k };
  } catch (e) {
    return { pass: false, detail: `key does not parse: ${(e as Error).message}` };
  }
}

async function checkDkim(selector: string, s: AuthSettings, client: DnsClient, ctx: CheckContext): Promise<Verdict> {
  const name = `${selector}._domainkey.${bareName(s.domain)}`;
  const records = (await txt(client, name, ctx.signal)).filter((r) => /(^|;)\s*(v=DKIM1|p=)/i.test(r) || r.includes('p='));
  if (records.length === 0) return { pass: false, detail: `no key at ${name}` };
  if (records.length > 1) return { pass: false, detail: `${records.length} key records at ${name}` };
  return parseDkimKey(records[0] ?? '', s.dkimMinBits);
}

async function checkDmarc(domain: string, client: DnsClient, ctx: CheckContext): Promise<Verdict> {
  const name = `_dmarc.${bareName(domain)}`;
  const records = (await txt(client, name, ctx.signal)).filter((r) => /^v=DMARC1(;|\s|$)/i.test(r.trim()));
  if (records.length === 0) return { pass: false, detail: `no DMARC record at ${name}` };
  if (records.length > 1) return { pass: false, detail: `${records.length} DMARC records at ${name} (must be one)` };
  const p = parseTags(records[0] ?? '')
    .get('p')
    ?.toLowerCase();
  if (!p || !['none', 'quarantine', 'reject'].includes(p)) return { pass: false, detail: `invalid policy p=${p ?? '(missing)'}` };
  return { pass: true, detail: `p=${p}` };
}

async function checkMtaSts(domain: string, s: AuthSettings, client: DnsClient, ctx: CheckContext): Promise<Verdict> {
  let id: string | false;
  try {
    id = stsPolicyId(await txt(client, `_mta-sts.${bareName(domain)}`, ctx.signal));
  } catch (e) {
    if (e instanceof DnsError) throw e;
    return { pass: false, detail: 'several _mta-sts records' };
  }
  if (id === false) return { pass: true, detail: 'no MTA-STS policy published' };
  const url = s.mtaStsUrl.replaceAll('{domain}', bareName(domain));
  let body: string;
  try {
    // No redirects are followed, as RFC 8461 §3.3 requires; a policy is at most 64 KiB (§3.3).
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(s.queryTimeoutMs)]);
    const r = await request(url, { signal, maxBytes: 64 * 1024 });
    body = r.body.toString('utf8');
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
  } catch (e) {
    throw new DnsError('mta_sts_fetch', `policy ${url} (id ${id}): ${(e as Error).message}`);
  }
  let policy: StsPolicy;
  try {
    policy = parseStsPolicy(body);
  } catch (e) {
    return { pass: false, detail: `policy id ${id} does not parse: ${(e as Error).message}` };
  }
  const valid = policyListsMx(s.mailHost, policy);
  return {
    mode: policy.mode,
    pass: valid,
    detail: `id ${id}, mode ${policy.mode}, mx ${policy.mx.join(',') || '-'}${valid ? '' : `: does not list ${s.mailHost}`}`,
  };
}

async function checkTlsa(name: string, client: DnsClient, ctx: CheckContext): Promise<Verdict> {
  const q = `_25._tcp.${bareName(name)}`;
  const r = await client.query(q, 'TLSA', { signal: ctx.signal });
  assertRcode(r, `TLSA ${q}`, true);
  const recs = recordsOf(r, 'TLSA').map((t) => {
    const h = t.value;
    // usage selector matching-type data
    return `${parseInt(h.slice(0, 2), 16)} ${parseInt(h.slice(2, 4), 16)} ${parseInt(h.slice(4, 6), 16)} ${h.slice(6, 22)}…`;
  });
  return recs.length > 0 ? { pass: true, detail: recs.join('; ') } : { pass: false, detail: `no TLSA at ${q}` };
}

export async function runAuth(target: AuthTarget, s: AuthSettings, ctx: CheckContext): Promise<AuthResult> {
  const startedAt = ctx.now();
  const t0 = performance.now();
  const base = { type: 'auth' as const, startedAt, method: target.method, subject: target.subject, ...(target.method === 'spf' ? { side: target.side } : {}) };
  const client = lookupClient(s);
  try {
    let v: Verdict;
    switch (target.method) {
      case 'spf':
        v = await checkSpf(target.subject, s, client, ctx);
        break;
      case 'dkim':
        v = await checkDkim(target.subject, s, client, ctx);
        break;
      case 'dmarc':
        v = await checkDmarc(target.subject, client, ctx);
        break;
      case 'mta-sts':
        v = await checkMtaSts(target.subject, s, client, ctx);
        break;
      case 'tlsa':
        v = await checkTlsa(target.subject, client, ctx);
        break;
      default: {
        const never: never = target;
        throw new Error(`unknown auth method ${JSON.stringify(never)}`);
      }
    }
    return {
      ...base,
      durationSeconds: secs(performance.now() - t0),
      ok: true,
      pass: v.pass,
      detail: text(v.detail),
      ...(v.mode ? { mtaStsMode: v.mode } : {}),
    };
  } catch (e) {
    return { ...base, durationSeconds: secs(performance.now() - t0), ...failureOf(target.method, e), pass: false };
  }
}

export function authSettings(plan: PlanConfig): AuthSettings {
  const c = plan.cutover;
  return {
    ...dnsSettings(plan),
    mtaStsUrl: plan.probes.dns.mta_sts_url,
    dkimMinBits: plan.probes.dns.dkim_min_bits,
    mailHost: c.mail_host,
    domain: c.domain,
    spfDomain: c.spf_domain ?? c.domain,
  };
}

export const authCheck: CheckSpec<'auth', AuthSettings> = {
  type: 'auth',
  run: runAuth,
  targets(plan) {
    const s = authSettings(plan);
    const c = plan.cutover;
    const t = (key: string, target: AuthTarget) => ({ key, target, settings: s });
    return [
      ...c.servers.map((sv) => t(`spf:${sv.ip}`, { method: 'spf', subject: sv.ip, side: sv.side })),
      ...c.dkim_selectors.map((selector) => t(`dkim:${selector}`, { method: 'dkim', subject: selector })),
      t(`dmarc:${c.domain}`, { method: 'dmarc', subject: c.domain }),
      t(`mta-sts:${c.domain}`, { method: 'mta-sts', subject: c.domain }),
      t(`tlsa:${c.mail_host}`, { method: 'tlsa', subject: c.mail_host }),
    ];
  },
};
