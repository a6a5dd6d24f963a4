/**
 * The results one simulated probe produces per check interval: for each of its resolvers an A,
 * AAAA and MX lookup plus the TTL analysis, and an SMTP check, rDNS and a blocklist lookup per
 * server IP — what a real probe in the cutover window sends every 15 s.
 */
import type { CheckResult } from '../../protocol/results.js';
import { dnsAnswer, dnsblClean, dnsTimeout, NAME, NEW_IP, OLD_IP, rdnsOk, smtpOk } from '../lib/content.js';

export interface SimProbe {
  id: string;
  region: string;
  resolvers: string[];
}

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
          ? dnsTimeout(t, resolver, false, qtype)
          : dnsAnswer(t, {
              resolver,
              authoritative: false,
              name: NAME,
              qtype,
              durationSeconds: 0.001 + slow * 0.08,
              answers: [side === 'old' ? OLD_IP : NEW_IP],
              ttl: Math.round(300 * (1 - slow)),
              side,
            }),
      );
    }
    out.push({ type: 'ttl', startedAt: t, durationSeconds: 0, ok: true, resolver, name: NAME, staleSeconds: 0, violation: false, extensionSeconds: 0 });
  });
  for (const [ip, side] of [
    [OLD_IP, 'old'],
    [NEW_IP, 'new'],
  ] as const) {
    const r = rand(probeIndex, cycle, side.length);
    out.push(
      smtpOk(t, ip, side, {
        connect: 0.002 + r * 0.01,
        banner: 0.05,
        ehlo: 0.004,
        starttls: 0.02 + r * 0.02,
        mail: 0.003,
        rcpt: 0.004 + r * 0.05,
        quit: 0.001,
      }),
    );
    out.push(rdnsOk(t, ip, side));
    out.push(dnsblClean(t, ip, side));
  }
  return out;
}
