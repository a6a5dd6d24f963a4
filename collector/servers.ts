/**
 * Results about a server IP (smtp, rdns, spf, dnsbl, roundtrip, mta) must name an IP of the plan
 * with its side: a token holder cannot create series (a listing, a certificate expiry) for an
 * address the plan does not have, or file the new IP under the old side.
 */
import type { CheckResult } from '../protocol/results.js';

export interface ServerRef {
  readonly ip: string;
  readonly side: string;
}

/** The first result that names a server wrongly, as `results.<i>.<field>: reason`, or undefined. */
export function serverProblem(servers: readonly ServerRef[], results: readonly CheckResult[]): string | undefined {
  const sideOf = new Map(servers.map((s) => [s.ip, s.side]));
  const known = servers.map((s) => `${s.ip} ${s.side}`).join(', ');
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (!r) continue;
    let field: string;
    let ip: string;
    let side: string | undefined;
    switch (r.type) {
      case 'smtp':
      case 'rdns':
      case 'dnsbl':
        [field, ip, side] = ['ip', r.ip, r.side];
        break;
      case 'roundtrip':
        [field, ip, side] = ['viaIp', r.viaIp, r.side];
        break;
      case 'auth':
        if (r.method !== 'spf') continue;
        [field, ip, side] = ['subject', r.subject, r.side];
        break;
      case 'mta': {
        // A log follower reports several IPs in one result.
        for (const [j, x] of r.ips.entries()) {
          const p = sideProblem(sideOf, known, `results.${i}.ips.${j}`, x.ip, x.side);
          if (p) return p;
        }
        continue;
      }
      default:
        continue;
    }
    const p = sideProblem(sideOf, known, `results.${i}`, ip, side, field);
    if (p) return p;
  }
  return undefined;
}

function sideProblem(sideOf: ReadonlyMap<string, string>, known: string, at: string, ip: string, side: string | undefined, field = 'ip'): string | undefined {
  const planned = sideOf.get(ip);
  if (planned === undefined) return `${at}.${field}: ${JSON.stringify(ip.slice(0, 64))} is not a server IP of the plan (${known})`;
  if (side !== planned) return `${at}.side: ${ip} is on side ${planned} in the plan, the result says ${side ?? '(none)'}`;
  return undefined;
}
