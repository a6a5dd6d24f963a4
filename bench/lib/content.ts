/**
 * The content both sides of a benchmark receive: one probe's results of one interval inside the
 * window, as the collector's JSON batch and as the Prometheus text a Pushgateway group of the
 * same series would hold (rendered through the collector's own result → metric mapping, so the
 * series are exactly the same).
 */
import { SeriesStore } from '../../collector/store/series-store.js';
import { resultOps } from '../../collector/samples.js';
import type { CheckResult, DnsblResult, DnsResult, RdnsResult, SmtpResult } from '../../protocol/results.js';

export const OLD_IP = '127.0.0.2';
export const NEW_IP = '127.0.0.3';
/** The mail host of the benchmarks' results. */
export const NAME = 'mail.company.test';
/** 4 recursive resolvers and the zone's 2 authoritative servers. */
export const RESOLVERS = ['system', '8.8.8.8', '1.1.1.1', '9.9.9.9', 'auth:ns1.company.test', 'auth:ns2.company.test'] as const;

type Side = 'old' | 'new';

/** A DNS lookup of the mail host at `resolver` that got no answer in 3 s. */
export function dnsTimeout(t: number, resolver: string, authoritative: boolean, qtype: DnsResult['qtype']): DnsResult {
  return {
    type: 'dns',
    startedAt: t,
    durationSeconds: 3,
    ok: false,
    phase: 'query',
    errorClass: 'timeout',
    code: 'dns_timeout',
    message: 'no answer in 3s',
    resolver,
    authoritative,
    name: NAME,
    qtype,
    transport: 'udp',
    rcode: '',
    answers: [],
    ttl: null,
    side: 'error',
  };
}

/** An answered DNS lookup over UDP. */
export function dnsAnswer(
  t: number,
  a: Pick<DnsResult, 'resolver' | 'authoritative' | 'name' | 'qtype' | 'durationSeconds' | 'answers' | 'ttl' | 'side'>,
): DnsResult {
  return {
    type: 'dns',
    startedAt: t,
    durationSeconds: a.durationSeconds,
    ok: true,
    resolver: a.resolver,
    authoritative: a.authoritative,
    name: a.name,
    qtype: a.qtype,
    transport: 'udp',
    rcode: 'NOERROR',
    answers: a.answers,
    ttl: a.ttl,
    side: a.side,
  };
}

/** A PTR lookup of `ip` that names the mail host, forward-confirmed. */
export function rdnsOk(t: number, ip: string, side: Side): RdnsResult {
  return { type: 'rdns', startedAt: t, durationSeconds: 0.01, ok: true, ip, side, ptrNames: [NAME], fcrdns: true, matchesMailHost: true };
}

/** `ip` not listed on zen.spamhaus.org. */
export function dnsblClean(t: number, ip: string, side: Side): DnsblResult {
  return { type: 'dnsbl', startedAt: t, durationSeconds: 0.01, ok: true, ip, side, list: 'zen.spamhaus.org', listed: false, answers: [] };
}

/** A successful SMTP check of `ip` up to RCPT, over TLS 1.3 with a verified certificate, with these phase times. */
export function smtpOk(t: number, ip: string, side: Side, phases: SmtpResult['phases']): SmtpResult {
  return {
    type: 'smtp',
    startedAt: t,
    durationSeconds: 0.3,
    ok: true,
    ip,
    side,
    port: 25,
    mode: 'rcpt',
    phases,
    replyCode: 250,
    enhancedCode: '2.1.5',
    banner: `${NAME} ESMTP`,
    bannerHost: NAME,
    ehloHost: NAME,
    tls: { version: 'TLSv1.3', certNames: [NAME], certExpiry: Math.floor(t / 1000) + 86_400 * 60, verified: true },
  };
}

/** Deterministic pseudo-random numbers, so every run pushes the same content. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * One interval of probe number `n`: 6 resolvers × A/AAAA/MX, TTL tracking per resolver, rDNS,
 * SPF, DKIM, DMARC and blocklists for both IPs, and one timed SMTP check (the probe alternates
 * destination IPs between intervals). 33 results, ~300 series.
 */
export function probeResults(n: number, t = Date.now()): CheckResult[] {
  const r = rng(n + 1);
  const out: CheckResult[] = [];
  for (const resolver of RESOLVERS) {
    const auth = resolver.startsWith('auth:');
    const side = auth || r() < 0.7 ? 'new' : 'old';
    for (const qtype of ['A', 'AAAA', 'MX'] as const) {
      const failed = !auth && r() < 0.03;
      if (failed) {
        out.push(dnsTimeout(t, resolver, auth, qtype));
        continue;
      }
      const answers = qtype === 'MX' ? [`10 ${NAME}`] : qtype === 'AAAA' ? [] : [side === 'old' ? OLD_IP : NEW_IP];
      out.push(
        dnsAnswer(t, {
          resolver,
          authoritative: auth,
          name: qtype === 'MX' ? 'company.test' : NAME,
          qtype,
          durationSeconds: Math.round((0.001 + r() * 0.08) * 1e6) / 1e6,
          answers,
          ttl: Math.floor(r() * 3600),
          side: qtype === 'AAAA' ? 'none' : side,
        }),
      );
    }
    const stale = !auth && r() < 0.1;
    out.push({
      type: 'ttl',
      startedAt: t,
      durationSeconds: 0,
      ok: true,
      resolver,
      name: NAME,
      staleSeconds: stale ? Math.floor(r() * 3000) : 0,
      violation: stale,
      extensionSeconds: stale ? 1800 : 0,
    });
  }
  for (const [ip, side] of [
    [OLD_IP, 'old'],
    [NEW_IP, 'new'],
  ] as const) {
    out.push(rdnsOk(t, ip, side));
    out.push({ type: 'auth', startedAt: t, durationSeconds: 0.02, ok: true, method: 'spf', subject: ip, side, pass: true, detail: 'pass' });
    out.push(dnsblClean(t, ip, side));
  }
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dkim', subject: 's2026', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dmarc', subject: 'company.test', pass: true, detail: 'p=quarantine' });
  const [ip, side] = n % 2 === 0 ? ([NEW_IP, 'new'] as const) : ([OLD_IP, 'old'] as const);
  const ph = () => Math.round((0.001 + r() * 0.05) * 1e6) / 1e6;
  out.push(smtpOk(t, ip, side, { connect: ph(), banner: ph(), ehlo: ph(), starttls: ph(), mail: ph(), rcpt: ph(), quit: ph() }));
  return out;
}

export const probeId = (n: number): string => `bench-${String(n).padStart(5, '0')}`;
export const regionOf = (n: number): string => ['eu', 'us', 'ap', 'sa'][n % 4] ?? 'eu';

/** The Prometheus text exposition of one probe's results: what is PUT to its Pushgateway group. */
export async function probeExposition(n: number, results: readonly CheckResult[]): Promise<string> {
  const store = new SeriesStore();
  const probe = { id: probeId(n), region: regionOf(n) };
  for (const r of results) store.apply(resultOps(probe, r));
  return store.text();
}

/** Sample lines (series) of a text exposition. */
export function seriesCount(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) if (line !== '' && !line.startsWith('#')) n++;
  return n;
}

const ID_SLOT = '__BATCH_ID_SLOT__';

/**
 * The JSON body of a push by probe `n` split around its batch id: `head + id + rest` is the body
 * with that id (the collector applies a batch id once, so a benchmark reusing one would measure
 * duplicates). Serialised once.
 */
export function batchTemplate(n: number, results: readonly CheckResult[]): { head: string; rest: string } {
  const text = JSON.stringify({
    probe: { id: probeId(n), region: regionOf(n), version: 'bench' },
    batch: { id: ID_SLOT, seq: 0, createdAt: Date.now() },
    results,
  });
  const at = text.indexOf(ID_SLOT);
  return { head: text.slice(0, at), rest: text.slice(at + ID_SLOT.length) };
}

/** The JSON body of a push by probe `n`, with a fresh batch id per call; each call only splices the id in. */
export function batchBody(n: number, results: readonly CheckResult[]): (seq: number) => string {
  const { head, rest } = batchTemplate(n, results);
  return (seq) => `${head}b${n.toString(36)}x${seq.toString(36).padStart(8, '0')}${rest}`;
}
