/**
 * Realistic results of every check type, as probes produce them, for collector and dashboard
 * tests. Values follow the lab world (127.0.0.2 old, 127.0.0.3 new).
 */
import { randomBytes } from 'node:crypto';
import type { CheckResult, DnsblResult, DnsResult, RoundtripResult, TtlResult } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';

export const OLD_IP = '127.0.0.2';
export const NEW_IP = '127.0.0.3';

/** A DNS lookup of `name` at `resolver` that got no answer in `seconds` (a failed result). */
export function dnsTimeout(t: number, o: { resolver: string; name: string; seconds: number; code: string; message: string }): DnsResult {
  return {
    type: 'dns',
    startedAt: t,
    durationSeconds: o.seconds,
    ok: false,
    phase: 'query',
    errorClass: 'timeout',
    code: o.code,
    message: o.message,
    resolver: o.resolver,
    authoritative: false,
    name: o.name,
    qtype: 'A',
    transport: 'udp',
    rcode: '',
    answers: [],
    ttl: null,
    side: 'error',
  };
}

/** The TTL analysis of one resolver (instant, successful): `o` gives the verdict. */
export function ttlResult(t: number, o: Omit<TtlResult, 'type' | 'startedAt' | 'durationSeconds' | 'ok'>): TtlResult {
  return { type: 'ttl', startedAt: t, durationSeconds: 0, ok: true, ...o };
}

/** A blocklist query of `ip` that the list refused to answer (127.255.255.254). */
export function dnsblRefused(t: number, o: { ip: string; side: 'old' | 'new'; list: string; message: string }): DnsblResult {
  return {
    type: 'dnsbl',
    startedAt: t,
    durationSeconds: 0.03,
    ok: false,
    phase: 'query',
    errorClass: 'dnsbl_refused',
    code: 'DNSBL_REFUSED',
    message: o.message,
    ip: o.ip,
    side: o.side,
    list: o.list,
    listed: false,
    answers: ['127.255.255.254'],
  };
}

/** A round-trip message sent via `viaIp` that had not arrived by the deadline (`seconds` after sending). */
export function roundtripLost(t: number, o: { viaIp: string; side: 'old' | 'new'; messageId: string; seconds: number; message: string }): RoundtripResult {
  return {
    type: 'roundtrip',
    startedAt: t,
    durationSeconds: o.seconds,
    ok: false,
    phase: 'wait',
    errorClass: 'lost',
    code: 'RT_LOST',
    message: o.message,
    viaIp: o.viaIp,
    side: o.side,
    messageId: o.messageId,
    delivered: false,
    sameClock: true,
  };
}

export function mixedResults(t = Date.now()): CheckResult[] {
  const name = 'mail.company.test';
  const out: CheckResult[] = [];
  for (const [resolver, side, ttl] of [
    ['127.0.0.53', 'new', 240],
    ['8.8.8.8', 'old', 3300],
    ['auth:ns1.company.test', 'new', 300],
  ] as const) {
    for (const qtype of ['A', 'MX'] as const) {
      out.push({
        type: 'dns',
        startedAt: t,
        durationSeconds: 0.004,
        ok: true,
        resolver,
        authoritative: resolver.startsWith('auth:'),
        name,
        qtype,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: [side === 'old' ? OLD_IP : NEW_IP],
        ttl,
        side,
      });
    }
  }
  out.push(dnsTimeout(t, { resolver: '9.9.9.9', name, seconds: 5, code: 'dns_timeout', message: 'no answer in 5s' }));
  out.push(
    ttlResult(t, {
      resolver: '8.8.8.8',
      name,
      staleSeconds: 1800,
      violation: true,
      extensionSeconds: 3000,
      safeToSwitchAt: t - 3_600_000,
      safeToDecommission: false,
    }),
  );
  out.push(ttlResult(t, { resolver: '127.0.0.53', name, staleSeconds: 0, violation: false, extensionSeconds: 0 }));
  for (const [ip, side] of [
    [OLD_IP, 'old'],
    [NEW_IP, 'new'],
  ] as const) {
    out.push({ type: 'rdns', startedAt: t, durationSeconds: 0.01, ok: true, ip, side, ptrNames: [name], fcrdns: true, matchesMailHost: true });
    out.push({
      type: 'auth',
      startedAt: t,
      durationSeconds: 0.02,
      ok: true,
      method: 'spf',
      subject: ip,
      side,
      pass: side === 'old',
      detail: side === 'old' ? 'pass' : 'softfail',
    });
    out.push({
      type: 'dnsbl',
      startedAt: t,
      durationSeconds: 0.01,
      ok: true,
      ip,
      side,
      list: 'zen.spamhaus.org',
      listed: side === 'new',
      answers: side === 'new' ? ['127.0.0.3'] : [],
    });
    out.push({
      type: 'smtp',
      startedAt: t,
      durationSeconds: 0.31,
      ok: true,
      ip,
      side,
      port: 25,
      mode: 'rcpt',
      phases: { connect: 0.002, banner: 0.05, ehlo: 0.004, starttls: 0.02, mail: 0.003, rcpt: 0.004, quit: 0.001 },
      replyCode: 250,
      enhancedCode: '2.1.5',
      banner: `${name} ESMTP`,
      bannerHost: name,
      ehloHost: name,
      tls: { version: 'TLSv1.3', certNames: [name], certExpiry: Math.floor(t / 1000) + 86_400 * 60, verified: true },
    });
    out.push({
      type: 'roundtrip',
      startedAt: t,
      durationSeconds: 2.5,
      ok: true,
      viaIp: ip,
      side,
      messageId: `rt-${ip}`,
      delivered: true,
      latencySeconds: 2.4,
      sameClock: true,
      deliveringIp: ip,
      helo: name,
      verdicts: { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' },
    });
  }
  out.push({
    type: 'smtp',
    startedAt: t,
    durationSeconds: 0.5,
    ok: false,
    phase: 'rcpt',
    errorClass: 'temp_fail',
    code: 'SMTP_4XX',
    message: '451 4.7.1 greylisted',
    ip: NEW_IP,
    side: 'new',
    port: 25,
    mode: 'rcpt',
    phases: { connect: 0.002, banner: 0.05 },
    replyCode: 451,
    enhancedCode: '4.7.1',
  });
  out.push(roundtripLost(t, { viaIp: NEW_IP, side: 'new', messageId: 'rt-lost', seconds: 600, message: 'not arrived by the deadline' }));
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dkim', subject: 's2026', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dmarc', subject: 'company.test', pass: true, detail: 'p=quarantine' });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'mta-sts', subject: 'company.test', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'tlsa', subject: `_25._tcp.${name}`, pass: false });
  return out;
}

let seq = 0;
export function batchOf(results: CheckResult[], probe = { id: 'p-eu', region: 'eu' }, id = randomBytes(9).toString('base64url')): Batch {
  return { probe: { ...probe, version: 'test' }, batch: { id, seq: seq++, createdAt: Date.now() }, results };
}
