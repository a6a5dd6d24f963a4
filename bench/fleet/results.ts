/**
 * The results one simulated probe produces per check interval: for each of its resolvers an A,
 * AAAA and MX lookup plus the TTL analysis, and an SMTP check, rDNS and a blocklist lookup per
 * server IP — what a real probe in the cutover window sends every 15 s.
 */
import type { CheckResult } from '../../protocol/results.js';

export interface SimProbe {
  id: string;
  region: string;
  resolvers: string[];
}

export const OLD_IP = '127.0.0.2';
export const NEW_IP = '127.0.0.3';
const NAME = 'mail.company.test';

/** A cheap deterministic pseudo-random number in [0, 1) from integers. */
function rand(...xs: number[]): number {
  let h = 2166136261;
  for (const x of xs) h = Math.imul(h ^ x, 16777619);
  return ((h >>> 0) % 10_000) / 10_000;
}

export function probeCycle(p: SimProbe, probeIndex: number, cycle: number, t: number): CheckResult[] {
  const out: CheckResult[] = [];
  p.resolvers.forEach((resolver, i) => {
    const moved = rand(probeIndex, i) < Math.min(1, cycle / 20);
    const side = moved ? 'new' : 'old';
    for (const qtype of ['A', 'AAAA', 'MX'] as const) {
      const slow = rand(probeIndex, i, cycle, qtype.length);
      const failed = slow > 0.995;
      out.push(
        failed
          ? {
              type: 'dns',
              startedAt: t,
              durationSeconds: 3,
              ok: false,
              phase: 'query',
              errorClass: 'timeout',
              code: 'dns_timeout',
              message: 'no answer in 3s',
              resolver,
              authoritative: false,
              name: NAME,
              qtype,
              transport: 'udp',
              rcode: '',
              answers: [],
              ttl: null,
              side: 'error',
            }
          : {
              type: 'dns',
              startedAt: t,
              durationSeconds: 0.001 + slow * 0.08,
              ok: true,
              resolver,
              authoritative: false,
              name: NAME,
              qtype,
              transport: 'udp',
              rcode: 'NOERROR',
              answers: [side === 'old' ? OLD_IP : NEW_IP],
              ttl: Math.round(300 * (1 - slow)),
              side,
            },
      );
    }
    out.push({ type: 'ttl', startedAt: t, durationSeconds: 0, ok: true, resolver, name: NAME, staleSeconds: 0, violation: false, extensionSeconds: 0 });
  });
  for (const [ip, side] of [
    [OLD_IP, 'old'],
    [NEW_IP, 'new'],
  ] as const) {
    const r = rand(probeIndex, cycle, side.length);
    out.push({
      type: 'smtp',
      startedAt: t,
      durationSeconds: 0.3,
      ok: true,
      ip,
      side,
      port: 25,
      mode: 'rcpt',
      phases: { connect: 0.002 + r * 0.01, banner: 0.05, ehlo: 0.004, starttls: 0.02 + r * 0.02, mail: 0.003, rcpt: 0.004 + r * 0.05, quit: 0.001 },
      replyCode: 250,
      enhancedCode: '2.1.5',
      banner: `${NAME} ESMTP`,
      bannerHost: NAME,
      ehloHost: NAME,
      tls: { version: 'TLSv1.3', certNames: [NAME], certExpiry: Math.floor(t / 1000) + 86_400 * 60, verified: true },
    });
    out.push({ type: 'rdns', startedAt: t, durationSeconds: 0.01, ok: true, ip, side, ptrNames: [NAME], fcrdns: true, matchesMailHost: true });
    out.push({ type: 'dnsbl', startedAt: t, durationSeconds: 0.01, ok: true, ip, side, list: 'zen.spamhaus.org', listed: false, answers: [] });
  }
  return out;
}
