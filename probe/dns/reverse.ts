/**
 * Reverse names: `d.c.b.a.in-addr.arpa` for IPv4 and the ip6.arpa nibble name for IPv6, and
 * the DNSBL query label (the same without the arpa suffix).
 */
import { isIP } from 'node:net';
import { expandV6 } from './classify.js';

export function reverseName(ip: string): string {
  if (isIP(ip) === 4)
    return `${ip
      .split('.')
      .map((o) => String(Number(o)))
      .reverse()
      .join('.')}.in-addr.arpa`;
  if (isIP(ip) !== 6) throw new Error(`not an IP address: ${ip}`);
  const hex = expandV6(ip)
    .map((g) => g.toString(16).padStart(4, '0'))
    .join('');
  return `${hex.split('').reverse().join('.')}.ip6.arpa`;
}

/** The label a DNSBL is asked for: reversed octets, or reversed nibbles for IPv6. */
export function dnsblKey(ip: string): string {
  return reverseName(ip).replace(/\.(in-addr|ip6)\.arpa$/, '');
}
