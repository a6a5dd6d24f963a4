/**
 * The round-trip sink (README, SMTP and the round trip): an SMTP server (smtp-server) that takes only signed
 * mailprobe round-trip messages for the round-trip address, records when and from where each one
 * arrived, and judges it the way a receiver would: SPF for the delivering IP and MAIL FROM, the
 * DKIM signature, DMARC (mailauth's submodules: receiver-auth.ts), and forward-confirmed reverse DNS
 * of the delivering IP.
 *
 * It is never a relay: RCPT to any other address is refused, unsigned and forged messages are
 * refused at the end of DATA, nothing is stored beyond the verdicts and nothing is sent on.
 * DNS lookups go through an injectable resolver (the lab's DNS world, or a test zone).
 */
import { promises as dnsp } from 'node:dns';
import { isIP, isIPv6, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { DNSResolver } from 'mailauth';
import type { Log as Logger } from '../log.js';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { VERDICTS } from '../../protocol/results.js';
import { SINK_REJECTS, type SinkRejectCode } from '../smtp/errors.js';
import { SIGNATURE_HEADER, verifyStamp } from '../smtp/signing.js';
import { receiverAuth } from './receiver-auth.js';

/** A DNS lookup as mailauth calls it (the shape of `dns.promises.resolve`). */
export type Resolver = (name: string, rrtype: string) => Promise<unknown>;

/** A resolver that asks one DNS server (`IP`, `IP:port`, `[v6]:port`), or the system's. */
export function dnsResolver(server?: string): Resolver {
  if (!server) return (name, rrtype) => dnsp.resolve(name, rrtype);
  const r = new dnsp.Resolver({ timeout: 2000, tries: 2 });
  r.setServers([server]);
  return (name, rrtype) => r.resolve(name, rrtype);
}

export type Verdict = (typeof VERDICTS)[number];

export interface Verdicts {
  spf: Verdict;
  dkim: Verdict;
  dmarc: Verdict;
  fcrdns: 'pass' | 'fail';
}

export interface Arrival {
  probeId: string;
  messageId: string;
  /** Send time from the signed header (the sender's clock), Unix ms. */
  sentAt: number;
  /** End of DATA at the sink (the sink's clock), Unix ms with sub-ms precision. */
  arrivedAt: number;
  deliveringIp: string;
  helo: string;
  mailFrom: string;
  tls: boolean;
  verdicts: Verdicts;
}

/** Where the check finds arrivals: the in-process sink, or anything that can wait for one. */
export interface SinkHandle {
  waitFor(messageId: string, untilMs: number, signal?: AbortSignal): Promise<Arrival | undefined>;
  /** The sink's clock (Unix ms), used for the send time when it runs in this process. */
  now(): number;
  /** The sink runs on this host (one clock for send and arrival). */
  readonly sameClock: boolean;
}

export interface SinkOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The round-trip address; the only recipient taken. */
  address: string;
  secret: string | Buffer;
  /** Largest message taken, bytes. */
  maxSize: number;
  /** Greeting and Authentication-Results name. Default: the host name. */
  name?: string | undefined;
  tls?: { key: string | Buffer; cert: string | Buffer } | undefined;
  resolver?: Resolver | undefined;
  /** Wall clock in Unix ms; default Date.now with sub-ms precision. */
  now?: (() => number) | undefined;
  /** Signed messages older than this are refused (replays). Default 1 day. */
  maxAgeMs?: number | undefined;
  /** A session is closed this long after it connected, busy or not (slow-drip clients). Default 5 min. */
  sessionMaxMs?: number | undefined;
  /** Connections open at once; more are turned away with 421. Default 500. */
  maxClients?: number | undefined;
  /** Connections open at once from one client address; more are turned away with 421. Default 20. */
  maxPerAddress?: number | undefined;
  /** A session with nothing sent for this long is closed. Default 30 s (well below sessionMaxMs). */
  idleTimeoutMs?: number | undefined;
  log?: Logger | undefined;
}

/** Unix ms with sub-millisecond precision (timeOrigin + performance.now()). */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

const RECENT_MAX = 1000;
/** Message ids remembered against replays (each for maxAgeMs; beyond that the age check refuses). */
const SEEN_MAX = 100_000;
const FUTURE_SKEW_MS = 5 * 60_000;

class SinkReject extends Error {
  readonly responseCode: number;
  constructor(readonly code: SinkRejectCode) {
    const d = SINK_REJECTS[code];
    super(`${d.enhanced} ${d.message}`);
    this.responseCode = d.reply;
  }
}

/** `1.2.3.4` → `4.3.2.1.in-addr.arpa`; IPv6 by nibbles. */
export function reverseName(ip: string): string {
  if (isIPv6(ip)) {
    const parts = ip.split('::');
    const head = (parts[0] ?? '').split(':').filter(Boolean);
    const tail = (parts[1] ?? '').split(':').filter(Boolean);
    const groups = parts.length > 1 ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
    return `${groups
      .map((g) => g.padStart(4, '0'))
      .join('')
      .split('')
      .reverse()
      .join('.')}.ip6.arpa`;
  }
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** PTR names of the IP, any of which resolves back to the same IP. */
export async function fcrdns(ip: string, resolver: Resolver): Promise<'pass' | 'fail'> {
  try {
    const names = (await resolver(reverseName(ip), 'PTR')) as string[];
    for (const name of names.slice(0, 10)) {
      try {
        const addrs = (await resolver(name, isIPv6(ip) ? 'AAAA' : 'A')) as string[];
        if (addrs.includes(ip)) return 'pass';
      } catch {
        // a PTR name that does not resolve does not confirm
      }
    }
  } catch {
    // no PTR
  }
  return 'fail';
}

const asVerdict = (v: unknown): Verdict => ((VERDICTS as readonly string[]).includes(String(v)) ? (v as Verdict) : 'permerror');

/** Strips the IPv4-mapped prefix smtp-server may report. */
const plainIp = (ip: string): string => (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip);

/** The body: everything after the first empty line. */
function bodyOf(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  return m ? raw.subarray(m.index + m[0].length) : Buffer.alloc(0);
}

function headerValue(raw: Buffer, name: string): string | undefined {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end >= 0 ? text.slice(0, end) : text).replace(/\r?\n[ \t]+/g, ' ');
  const lower = name.toLowerCase();
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === lower) return line.slice(colon + 1).trim();
  }
  return undefined;
}

type Waiter = { resolve: (a: Arrival | undefined) => void; timer: NodeJS.Timeout; signal?: AbortSignal | undefined; onAbort: () => void };

export class Sink {
  readonly host: string;
  port = 0;
  /** Refused messages and recipients by code. */
  readonly rejected: Record<SinkRejectCode, number> = {
    sink_unsigned: 0,
    sink_bad_signature: 0,
    sink_stale: 0,
    sink_replay: 0,
    sink_relay_denied: 0,
    sink_too_big: 0,
  };
  /** Connections turned away because their address had maxPerAddress open. */
  refusedConnections = 0;
  /** Message id → when it was taken (replays of it get 550). */
  readonly #seen = new Map<string, number>();
  /** Client address → connections open. */
  /** Open sockets per client address (pruned of closed ones as connections come in). */
  readonly #perAddress = new Map<string, Set<Socket>>();
  /** Signed messages taken (including late and duplicate ones). */
  accepted = 0;
  readonly #server: SMTPServer;
  readonly #recent = new Map<string, Arrival>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #now: () => number;
  readonly #resolver: Resolver;
  readonly #name: string;
  readonly #pendingVerdicts = new Set<Promise<void>>();
  /** Message ids that arrived and whose verdicts are being worked out. */
  readonly #judging = new Set<string>();

  readonly #opts: SinkOptions;

  // biome-ignore lint/style/useConsistentMemberAccessibility: a private constructor (made by the static start/open) has no # form
  private constructor(opts: SinkOptions) {
    this.#opts = opts;
    this.host = opts.host;
    this.#now = opts.now ?? preciseNow;
    this.#resolver = opts.resolver ?? dnsResolver();
    this.#name = opts.name ?? hostname();
    const address = opts.address.toLowerCase();
    this.#server = new SMTPServer({
      name: this.#name,
      banner: 'mailprobe round-trip sink',
      logger: false,
      disableReverseLookup: true,
      authOptional: true,
      disabledCommands: ['AUTH'],
      size: opts.maxSize,
      closeTimeout: 1000,
      maxClients: opts.maxClients ?? 500,
      socketTimeout: opts.idleTimeoutMs ?? 30_000,
      ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
      onRcptTo: (addr, _session, cb) => {
        if (addr.address.toLowerCase() === address) return cb();
        this.#reject('sink_relay_denied');
        cb(new SinkReject('sink_relay_denied'));
      },
      onData: (stream, session, cb) => this.#onData(stream, session, cb),
    });
    this.#server.on('error', (err) => opts.log?.warn({ err, code: 'sink_error' }, 'sink connection error'));
    // smtp-server cuts only idle sessions; a client that drips a byte now and then would hold
    // its session for ever. Relayed test mail takes seconds, so every session gets a lifetime.
    const sessionMaxMs = opts.sessionMaxMs ?? 5 * 60_000;
    this.#server.server.on('connection', (socket: Socket) => {
      const timer = setTimeout(() => socket.destroy(), sessionMaxMs);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    });
    this.#limitPerAddress(opts.maxPerAddress ?? 20);
  }

  /**
   * One address may hold at most `max` connections: further ones get 421 and are closed before
   * smtp-server sees them, so they never count against maxClients (500 idle connections from one
   * address cannot turn a real delivery away).
   */
  #limitPerAddress(max: number): void {
    const net = this.#server.server;
    const handlers = net.listeners('connection') as ((socket: Socket) => void)[];
    net.removeAllListeners('connection');
    net.on('connection', (socket: Socket) => {
      const addr = plainIp(socket.remoteAddress ?? '');
      // smtp-server removes every listener of the raw socket at STARTTLS, so a 'close' listener
      // would never fire for TLS sessions: closed sockets are pruned here instead.
      const open = this.#perAddress.get(addr) ?? new Set<Socket>();
      for (const s of open) if (s.destroyed) open.delete(s);
      for (const [a, set] of this.#perAddress) if (a !== addr && [...set].every((s) => s.destroyed)) this.#perAddress.delete(a);
      if (open.size >= max) {
        this.refusedConnections++;
        socket.on('error', () => socket.destroy());
        socket.end(`421 4.7.0 ${this.#name} too many connections from ${addr}, try again later\r\n`);
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      open.add(socket);
      this.#perAddress.set(addr, open);
      for (const h of handlers) h.call(net, socket);
    });
  }

  static async start(opts: SinkOptions): Promise<Sink> {
    const sink = new Sink(opts);
    await new Promise<void>((resolve, reject) => {
      sink.#server.server.once('error', reject);
      sink.#server.listen(opts.port, opts.host, () => {
        sink.#server.server.off('error', reject);
        resolve();
      });
    });
    const a = sink.#server.server.address();
    sink.port = typeof a === 'object' && a ? a.port : opts.port;
    return sink;
  }

  #reject(code: SinkRejectCode): void {
    this.rejected[code]++;
    this.#opts.log?.info({ code }, SINK_REJECTS[code].message);
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): void {
    // Read now: smtp-server resets the envelope once the reply is sent.
    const deliveringIp = plainIp(session.remoteAddress);
    const helo = session.hostNameAppearsAs || '';
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const tls = session.secure;
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is read and dropped.
      if (size <= this.#opts.maxSize) chunks.push(c);
    });
    stream.on('end', () => {
      const arrivedAt = this.#now();
      if (stream.sizeExceeded || size > this.#opts.maxSize) {
        this.#reject('sink_too_big');
        return cb(new SinkReject('sink_too_big'));
      }
      const raw = Buffer.concat(chunks);
      const v = verifyStamp(this.#opts.secret, headerValue(raw, SIGNATURE_HEADER), { from: mailFrom, to: this.#opts.address, body: bodyOf(raw) });
      if (!v.ok) {
        const code = v.reason === 'unsigned' ? 'sink_unsigned' : 'sink_bad_signature';
        this.#reject(code);
        return cb(new SinkReject(code));
      }
      const age = arrivedAt - v.stamp.sentAt;
      const maxAge = this.#opts.maxAgeMs ?? 86_400_000;
      if (age > maxAge || age < -FUTURE_SKEW_MS) {
        this.#reject('sink_stale');
        return cb(new SinkReject('sink_stale'));
      }
      if (this.#seen.has(v.stamp.messageId)) {
        this.#reject('sink_replay');
        return cb(new SinkReject('sink_replay'));
      }
      this.#remember(v.stamp.messageId, arrivedAt, maxAge);
      this.accepted++;
      cb(null, 'Ok: round trip recorded');
      // Arrived: a deadline that passes while the verdicts are worked out no longer makes it lost.
      this.#judging.add(v.stamp.messageId);
      for (const w of this.#waiters.get(v.stamp.messageId) ?? []) clearTimeout(w.timer);
      const p = this.judge(raw, deliveringIp, helo, mailFrom).then((verdicts) => {
        this.#record({ ...v.stamp, arrivedAt, deliveringIp, helo, mailFrom, tls, verdicts });
      });
      this.#pendingVerdicts.add(p);
      void p.finally(() => {
        this.#pendingVerdicts.delete(p);
        this.#judging.delete(v.stamp.messageId);
      });
    });
  }

  /** Remembers a message id taken; forgets ids past the age limit, and the oldest beyond SEEN_MAX. */
  #remember(messageId: string, at: number, maxAge: number): void {
    this.#seen.set(messageId, at);
    for (const [id, t] of this.#seen) {
      if (this.#seen.size <= SEEN_MAX && at - t <= maxAge + FUTURE_SKEW_MS) break;
      this.#seen.delete(id);
    }
  }

  /** What a receiver would conclude about this delivery. */
  async judge(raw: Buffer, ip: string, helo: string, mailFrom: string): Promise<Verdicts> {
    const [auth, fc] = await Promise.all([
      receiverAuth(raw, { ip, helo, sender: mailFrom, mta: this.#name, resolver: this.#resolver as DNSResolver }).catch((err: unknown) => {
        this.#opts.log?.warn({ err, code: 'sink_auth_failed' }, 'mailauth failed');
        return undefined;
      }),
      fcrdns(ip, this.#resolver),
    ]);
    const dkimResults = auth?.dkim?.results ?? [];
    const dkim = dkimResults.length === 0 ? 'none' : dkimResults.some((r) => r.status?.result === 'pass') ? 'pass' : asVerdict(dkimResults[0]?.status?.result);
    return {
      spf: auth?.spf ? asVerdict(auth.spf.status?.result) : 'temperror',
      dkim: auth ? dkim : 'temperror',
      dmarc: auth ? (auth.dmarc ? asVerdict(auth.dmarc.status?.result) : 'none') : 'temperror',
      fcrdns: fc,
    };
  }

  #record(a: Arrival): void {
    if (this.#recent.has(a.messageId)) return;
    this.#recent.set(a.messageId, a);
    if (this.#recent.size > RECENT_MAX) this.#recent.delete(this.#recent.keys().next().value as string);
    const ws = this.#waiters.get(a.messageId);
    if (!ws) return;
    this.#waiters.delete(a.messageId);
    for (const w of ws) this.#settle(w, a);
  }

  #settle(w: Waiter, a: Arrival | undefined): void {
    clearTimeout(w.timer);
    w.signal?.removeEventListener('abort', w.onAbort);
    w.resolve(a);
  }

  /** The arrival of a message, waiting until `untilMs` (Unix ms) or the signal; undefined if not arrived. */
  waitFor(messageId: string, untilMs: number, signal?: AbortSignal): Promise<Arrival | undefined> {
    const got = this.#recent.get(messageId);
    if (got) return Promise.resolve(got);
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const set = this.#waiters.get(messageId) ?? new Set<Waiter>();
      this.#waiters.set(messageId, set);
      const w: Waiter = {
        resolve,
        signal,
        // Not armed when the message already arrived and only its verdicts are pending.
        timer: this.#judging.has(messageId) ? setTimeout(() => {}, 0) : setTimeout(() => drop(), Math.max(0, untilMs - this.#now())),
        onAbort: () => drop(),
      };
      const drop = () => {
        set.delete(w);
        if (set.size === 0) this.#waiters.delete(messageId);
        this.#settle(w, undefined);
      };
      signal?.addEventListener('abort', w.onAbort, { once: true });
      set.add(w);
    });
  }

  /** Keeps the process alive while the sink listens (a standalone sink). */
  ref(): this {
    this.#server.server.ref();
    return this;
  }

  /** Lets the process exit while the sink listens (the probe's scheduler keeps it alive). */
  unref(): this {
    this.#server.server.unref();
    return this;
  }

  /** Arrivals recorded (most recent last). */
  arrivals(): Arrival[] {
    return [...this.#recent.values()];
  }

  /** Resolves when verdicts of everything accepted so far are in. */
  async settled(): Promise<void> {
    while (this.#pendingVerdicts.size > 0) await Promise.allSettled([...this.#pendingVerdicts]);
  }

  async close(): Promise<void> {
    for (const [, ws] of this.#waiters) for (const w of ws) this.#settle(w, undefined);
    this.#waiters.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.settled();
  }
}
