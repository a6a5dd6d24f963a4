/**
 * The counts of one follower between two reports: per server IP, inbound sessions and accepted
 * messages by client network (IPv4 /24 and IPv6 /48 by default), and the time of the last
 * session. `drain()` hands out the interval's counts with the top networks by sessions plus
 * messages named and the rest folded into "other", so a report has a bounded number of series
 * however many clients there were.
 *
 * Which server IP a line belongs to: the address the line names (Exim's `I=`, postscreen), else
 * the IP mapped to its service (Postfix's syslog_name), else the follower's default IP. Lines on
 * an address the follower does not report (a submission port on a private address) are skipped.
 */
import { type BlockList, isIPv4, isIPv6 } from 'node:net';
import { MAX_NETS, OTHER_NET, type MtaResult } from '../../protocol/checks/mta.js';
import { expandV6 } from '../dns/classify.js';
import type { MtaEvent } from './event.js';

export interface TallyOptions {
  /** The server IPs reported, with their side (the plan's servers this MTA receives on). */
  ips: readonly { ip: string; side: 'old' | 'new' }[];
  /** Postfix syslog_name → server IP. */
  services?: Readonly<Record<string, string>>;
  /** The IP of lines that name none (default: the only IP when there is one). */
  defaultIp?: string | undefined;
  /** Networks named per IP and interval (the rest is "other"). */
  topN: number;
  v4Prefix: number;
  v6Prefix: number;
  /** When following began (the last-session time until a session is seen). */
  startedAt: number;
  /** probes.decommission_quiet: an IP is quiet when its last session (or the start) is this old (default 24h). */
  quietMs?: number;
  /** Clients not counted: the probes' own SMTP checks, monitoring (`--ignore-client`). */
  ignore?: BlockList;
}

interface IpCounts {
  sessions: Map<string, number>;
  messages: Map<string, number>;
  last: number;
}

export class Tally {
  readonly #o: TallyOptions;
  readonly #counts = new Map<string, IpCounts>();
  readonly #last = new Map<string, number>();
  lines = 0;
  unknownLines = 0;
  /** Lines about an IP this follower does not report, or from an ignored client. */
  skipped = 0;

  constructor(o: TallyOptions) {
    this.#o = o;
    for (const { ip } of o.ips) this.#last.set(ip, o.startedAt);
  }

  /** Takes one parsed line; `now` is the reader's clock for lines without a timestamp. */
  add(ev: MtaEvent, now: number): void {
    this.lines++;
    if (ev.kind === 'unknown') {
      this.unknownLines++;
      return;
    }
    if (ev.kind === 'other') return;
    const ip = ev.serverIp ?? (ev.service !== undefined ? this.#o.services?.[ev.service] : undefined) ?? this.#defaultIp();
    if (ip === undefined || !this.#last.has(ip) || this.#ignored(ev.client)) {
      this.skipped++;
      return;
    }
    let c = this.#counts.get(ip);
    if (!c) {
      c = { sessions: new Map(), messages: new Map(), last: 0 };
      this.#counts.set(ip, c);
    }
    const net = clientNet(ev.client, this.#o.v4Prefix, this.#o.v6Prefix);
    const into = ev.kind === 'session' ? c.sessions : c.messages;
    into.set(net, (into.get(net) ?? 0) + 1);
    if (ev.kind === 'session') {
      const at = Math.min(ev.at ?? now, now);
      if (at > (this.#last.get(ip) ?? 0)) this.#last.set(ip, at);
    }
  }

  #ignored(client: string): boolean {
    const list = this.#o.ignore;
    if (!list) return false;
    const family = isIPv4(client) ? 'ipv4' : isIPv6(client) ? 'ipv6' : undefined;
    return family !== undefined && list.check(client, family);
  }

  #defaultIp(): string | undefined {
    return this.#o.defaultIp ?? (this.#o.ips.length === 1 ? this.#o.ips[0]?.ip : undefined);
  }

  /** The interval's figures (every reported IP, with or without traffic) at `now`; the counts start again. */
  drain(now: number): Pick<MtaResult, 'ips' | 'lines' | 'unknownLines'> {
    const quietMs = this.#o.quietMs ?? 86_400_000;
    const ips = this.#o.ips.map(({ ip, side }) => {
      const c = this.#counts.get(ip);
      const { sessions, messages } = c ? top(c.sessions, c.messages, Math.min(this.#o.topN, MAX_NETS)) : { sessions: [], messages: [] };
      const last = Math.round(this.#last.get(ip) ?? this.#o.startedAt);
      return { ip, side, sessions, messages, lastSessionAt: last, quiet: now - last >= quietMs };
    });
    const out = { ips, lines: this.lines, unknownLines: this.unknownLines };
    this.#counts.clear();
    this.lines = 0;
    this.unknownLines = 0;
    return out;
  }
}

/** The top `n` networks by sessions + messages named, the rest summed as "other" (in both lists alike). */
function top(sessions: Map<string, number>, messages: Map<string, number>, n: number) {
  const total = new Map<string, number>();
  for (const m of [sessions, messages]) for (const [k, v] of m) total.set(k, (total.get(k) ?? 0) + v);
  const named = new Set(
    [...total]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, n)
      .map(([k]) => k),
  );
  const fold = (m: Map<string, number>) => {
    const out: { net: string; count: number }[] = [];
    let other = 0;
    for (const [net, count] of m) {
      if (named.has(net)) out.push({ net, count });
      else other += count;
    }
    out.sort((a, b) => (a.net < b.net ? -1 : 1));
    if (other > 0) out.push({ net: OTHER_NET, count: other });
    return out;
  };
  return { sessions: fold(sessions), messages: fold(messages) };
}

/** The client's network: `198.51.100.0/24`, `2001:db8:1::/48`; anything not an address as it is (bounded). */
export function clientNet(addr: string, v4Prefix: number, v6Prefix: number): string {
  if (isIPv4(addr)) {
    const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const masked = v4Prefix === 0 ? 0 : Math.floor(n / 2 ** (32 - v4Prefix)) * 2 ** (32 - v4Prefix);
    return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.')}/${v4Prefix}`;
  }
  if (isIPv6(addr)) {
    // A zone (fe80::1%eth0) is no part of the network.
    const bits = expandV6(addr.replace(/%.*$/, ''))
      .map((g) => g.toString(2).padStart(16, '0'))
      .join('');
    const kept = bits.slice(0, v6Prefix).padEnd(128, '0');
    const out: string[] = [];
    for (let i = 0; i < 8; i++) out.push(Number.parseInt(kept.slice(i * 16, i * 16 + 16), 2).toString(16));
    return `${compress6(out)}/${v6Prefix}`;
  }
  return addr.slice(0, 64);
}

function compress6(groups: string[]): string {
  // The longest run of zero groups becomes :: (RFC 5952).
  let best = -1;
  let len = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > len && j - i > 1) [best, len] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + len).join(':')}`;
}
