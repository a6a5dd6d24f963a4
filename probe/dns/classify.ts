/**
 * How an answer set compares with the plan (README, the probe): old / new / both / other / none.
 * (`error` is for failed queries and is decided by the caller.)
 */
import type { AnswerSide, Side } from '../../protocol/results.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { isIP } = process.getBuiltinModule('node:net');

/** Canonical text of an IP so `::0001` and `::1` compare equal. */
export function canonicalIp(ip: string): string {
  const v = isIP(ip);
  if (v === 4)
    return ip
      .split('.')
      .map((o) => String(Number(o)))
      .join('.');
  if (v === 6)
    return expandV6(ip)
      .map((g) => g.toString(16))
      .join(':');
  return ip.toLowerCase();
}

/** The eight 16-bit groups of an IPv6 address (IPv4-embedded tails handled). */
export function expandV6(ip: string): number[] {
  let s = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const o = v4[1].split('.').map(Number);
    s = `${s.slice(0, -v4[1].length)}${(((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16)}:${(((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16) || 0);
}

/** The server IPs of the plan (cutover.servers) with their sides. */
export type Servers = readonly { readonly ip: string; readonly side: Side }[];

/** The side of an IP among the plan's servers, or undefined. */
export function sideOf(servers: Servers, ip: string): Side | undefined {
  const c = canonicalIp(ip);
  return servers.find((s) => canonicalIp(s.ip) === c)?.side;
}

/** Classifies a set of addresses against the plan's servers. */
export function classifyAddresses(servers: Servers, addresses: readonly string[]): Exclude<AnswerSide, 'error'> {
  if (addresses.length === 0) return 'none';
  let old = false;
  let neu = false;
  for (const a of addresses) {
    const s = sideOf(servers, a);
    if (s === undefined) return 'other';
    if (s === 'old') old = true;
    else neu = true;
  }
  return old && neu ? 'both' : old ? 'old' : 'new';
}

/** A stable key of an answer set (sorted, canonical). */
export function answerKey(answers: readonly string[]): string {
  return [...answers]
    .map((a) => (isIP(a) ? canonicalIp(a) : a.toLowerCase()))
    .sort()
    .join(',');
}
