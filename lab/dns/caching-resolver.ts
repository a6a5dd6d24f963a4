/**
 * The lab's caching resolvers, each on its own loopback port, forwarding to the lab's
 * authoritative server (RD=0) and caching by name and type with different TTL behaviour:
 *
 * - `honest`: keeps an answer exactly its TTL and reports the remaining TTL;
 * - `ignore`: keeps it `extraSeconds` longer than the TTL (and reports the lengthened TTL);
 * - `clamp`: never keeps it shorter than `minTtl` (reports the clamped TTL);
 * - `stale`: honest, but when a refresh fails it serves the expired answer for up to
 *   `staleSeconds` with TTL `replyTtl` (RFC 8767 serve-stale).
 *
 * Faults on demand: `upstreamDown(true)` makes every refresh fail (SERVFAIL, or stale data).
 */
import { QTYPE, exchange, type QType } from '../../probe/dns/client.js';
import type { HostPort } from '../../config/specs.js';
import { Packet, responseFor, serveDns, type LabDnsServer } from './server.js';

export type ResolverMode =
  | { kind: 'honest' }
  | { kind: 'ignore'; extraSeconds: number }
  | { kind: 'clamp'; minTtl: number }
  | { kind: 'stale'; staleSeconds: number; replyTtl?: number };

export interface CachingResolverOptions {
  upstream: HostPort;
  mode: ResolverMode;
  host?: string;
  now?: () => number;
  /** Upstream timeout. Default 1000 ms. */
  upstreamTimeoutMs?: number;
}

interface Entry {
  rcode: number;
  answers: Packet['answers'];
  authorities: Packet['authorities'];
  fetchedAt: number;
  /** When the entry expires under this resolver's rule, Unix ms. */
  expiresAt: number;
  /** The smallest TTL the upstream gave. */
  ttl: number;
}

export interface CachingResolver extends LabDnsServer {
  readonly mode: ResolverMode;
  upstreamDown(down: boolean): void;
  /** Forget everything cached. */
  flush(): void;
  /** Upstream fetches so far. */
  readonly fetches: number;
}

const TYPE_NAMES = new Map<number, QType>(Object.entries(QTYPE).map(([k, v]) => [v, k as QType]));

export async function startCachingResolver(opts: CachingResolverOptions): Promise<CachingResolver> {
  const now = opts.now ?? Date.now;
  const mode = opts.mode;
  const cache = new Map<string, Entry>();
  let down = false;
  let fetches = 0;

  const keep = (ttl: number): number => {
    switch (mode.kind) {
      case 'ignore':
        return ttl + mode.extraSeconds;
      case 'clamp':
        return Math.max(ttl, mode.minTtl);
      default:
        return ttl;
    }
  };

  const fetch = async (name: string, type: QType): Promise<Entry> => {
    if (down) throw new Error('upstream down (fault)');
    fetches++;
    const { packet } = await exchange(opts.upstream, name, type, { recursive: false, timeoutMs: opts.upstreamTimeoutMs ?? 1000 });
    if (packet.header.rcode !== 0 && packet.header.rcode !== 3) throw new Error(`upstream rcode ${packet.header.rcode}`);
    const soaMin = packet.authorities.find((r) => r.type === QTYPE.SOA);
    const ttls = packet.answers.length > 0 ? packet.answers.map((r) => r.ttl) : [Math.min(soaMin?.ttl ?? 0, soaMin?.minimum ?? 0)];
    const ttl = Math.min(...ttls);
    const at = now();
    return { rcode: packet.header.rcode, answers: packet.answers, authorities: packet.authorities, fetchedAt: at, expiresAt: at + keep(ttl) * 1000, ttl };
  };

  const reply = (req: Packet, e: Entry, ttlOf: (original: number) => number): Packet => {
    const res = responseFor(req);
    res.header.ra = 1;
    res.header.rcode = e.rcode;
    const copy = (r: Packet['answers'][number]) => new Packet.Resource({ ...r, ttl: ttlOf(r.ttl) });
    res.answers = e.answers.map(copy);
    res.authorities = e.authorities.map(copy);
    return res;
  };

  const handle = async (req: Packet): Promise<Packet> => {
    const q = req.questions[0];
    const res = responseFor(req);
    res.header.ra = 1;
    const type = q ? TYPE_NAMES.get(q.type) : undefined;
    if (!q || !type) {
      res.header.rcode = 4;
      return res;
    }
    const key = `${q.name.toLowerCase()}/${q.type}`;
    const t = now();
    const hit = cache.get(key);
    if (hit && t < hit.expiresAt) {
      return reply(req, hit, (orig) => Math.max(0, Math.floor((hit.fetchedAt + keep(orig) * 1000 - t) / 1000)));
    }
    try {
      const e = await fetch(q.name, type);
      cache.set(key, e);
      return reply(req, e, (orig) => keep(orig));
    } catch {
      if (hit && mode.kind === 'stale' && t < hit.expiresAt + mode.staleSeconds * 1000) {
        const replyTtl = mode.replyTtl ?? 30;
        return reply(req, hit, () => replyTtl);
      }
      res.header.rcode = 2;
      return res;
    }
  };

  const server = await serveDns(handle, opts.host ?? '127.0.0.1');
  return {
    ...server,
    mode,
    upstreamDown(d) {
      down = d;
    },
    flush() {
      cache.clear();
    },
    get fetches() {
      return fetches;
    },
  };
}
