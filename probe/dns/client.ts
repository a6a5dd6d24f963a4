/**
 * One DNS client per resolver, built on dns2's wire format (`Packet`).
 *
 * Never dns2's `DNS` class: it races every server and returns the first answer, hiding exactly
 * the differences between resolvers that mailprobe measures. dns2's own transports are not
 * used either, for reasons found in their source (3.0.0): the UDP client cannot send EDNS
 * without an ECS option, silently drops garbage and mismatched replies until its timeout and
 * cannot be aborted; the TCP client has no timeout, no id check, no abort and splits IPv6
 * hosts on ':'; the DoH client has no timeout. So the transports below keep dns2's Packet for
 * encoding and parsing and add what monitoring needs: a timeout and an AbortSignal on every
 * transport, EDNS on UDP, retry over TCP on truncation, id and question checks, and a stable
 * error code for every way a reply can be wrong.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type dns2 from 'dns2';
import { DnsError } from './errors.js';
import { request } from '../http-client.js';
import { concreteResolver, formatHostPort, type HostPort, type ResolverSpec } from './resolvers.js';
import { bareName } from '../../protocol/dns-name.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { randomInt } = process.getBuiltinModule('node:crypto');
const { connect: netConnect, isIP } = process.getBuiltinModule('node:net');

// dns2's wire format alone (its package exports only the whole library, servers and DoH client with
// node:http2 included): packet.js next to its entry point.
const { createRequire } = process.getBuiltinModule('node:module');
const dns2Require = createRequire(createRequire(import.meta.url).resolve('dns2'));
const Packet = dns2Require('./packet.js') as typeof dns2.Packet;
type Packet = InstanceType<typeof Packet>;

/** dns2's bit reader (`lib/reader.js`, the one its parser calls). */
const dns2Reader = dns2Require('./lib/reader.js') as { read(buffer: Buffer, offset: number, length: number): number };
/** Its own read, one bit per step of a loop. */
export const bitRead = dns2Reader.read;
/**
 * dns2 reads every field bit by bit (a 16-bit type is 16 steps of a loop, a name 8 per byte):
 * ~12 % of the probe's JavaScript time on the footprint workload, which the probe interprets
 * (config/node-runtime.ts). A read of whole bytes at a byte boundary (everything but the
 * header's flag bits) takes the bytes at once here; anything else, and every read that would
 * throw, goes to dns2's own. Same values, same errors (test/probe/dns/client.test.ts compares
 * them over every offset and length). It replaces dns2's read for the whole process, so the
 * lab's dns2 servers, when they run beside the probe code, parse with it too.
 */
export function byteRead(buffer: Buffer, offset: number, length: number): number {
  if ((offset & 7) !== 0 || (length & 7) !== 0 || offset < 0 || length < 0 || offset + length > buffer.length * 8) return bitRead(buffer, offset, length);
  let n = 0;
  for (let i = offset >>> 3, end = (offset + length) >>> 3; i < end; i++) n = n * 256 + (buffer[i] as number);
  return n;
}
dns2Reader.read = byteRead;

/** Record types the probe asks for (numbers for types dns2 has no name for). */
export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 } as const;
export type QType = keyof typeof QTYPE;

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

export type Transport = 'udp' | 'tcp' | 'dot' | 'doh';

/** One resource record, normalised. */
export interface DnsRecord {
  name: string;
  type: number;
  ttl: number;
  /** A/AAAA address, MX exchange, PTR/CNAME/NS target, TXT strings joined without separator, hex rdata otherwise. */
  value: string;
  /** MX preference. */
  priority?: number;
  /** TXT character-strings as published. */
  strings?: string[];
}

export interface DnsResponse {
  rcode: number;
  rcodeName: string;
  /** Authoritative answer bit. */
  aa: boolean;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  transport: Transport;
  /** The server that answered, `host:port`. */
  server: string;
  durationMs: number;
}

export interface QueryOptions {
  /** RD bit; false to ask an authoritative server directly. Default true. */
  recursive?: boolean;
  signal?: AbortSignal;
  /** Per-transport timeout. Default: the client's. */
  timeoutMs?: number;
}

export interface ClientOptions {
  /** Timeout of each transport attempt. Default 3000 ms. */
  timeoutMs?: number;
  /** EDNS UDP payload size advertised. Default 1232 (the DNS flag day 2020 value). */
  ednsPayload?: number;
  /** Extra TLS options for DoT (a CA for the lab). */
  tls?: ConnectionOptions;
}

export interface DnsClient {
  readonly label: string;
  query(name: string, type: QType, opts?: QueryOptions): Promise<DnsResponse>;
}

/** Builds the client of one resolver spec (`system` reads /etc/resolv.conf now). */
export function createClient(parsed: ResolverSpec, opts: ClientOptions = {}): DnsClient {
  const spec = concreteResolver(parsed);
  const timeoutMs = opts.timeoutMs ?? 3000;
  const payload = opts.ednsPayload ?? 1232;
  switch (spec.kind) {
    case 'dns':
      return {
        label: spec.label,
        async query(name, type, q = {}) {
          // Like the libc stub: the next nameserver only when one does not answer at all.
          let last: unknown;
          for (const server of spec.servers) {
            try {
              return await classicQuery(server, name, type, { recursive: q.recursive ?? true, timeoutMs: q.timeoutMs ?? timeoutMs, payload, signal: q.signal });
            } catch (e) {
              last = e;
              if (!(e instanceof DnsError) || !['dns_timeout', 'dns_network'].includes(e.code)) throw e;
            }
          }
          throw last;
        },
      };
    case 'tcp':
      return {
        label: spec.label,
        query: (name, type, q = {}) =>
          streamQuery(spec.server, name, type, { recursive: q.recursive ?? true, timeoutMs: q.timeoutMs ?? timeoutMs, signal: q.signal }),
      };
    case 'dot':
      return {
        label: spec.label,
        query: (name, type, q = {}) =>
          streamQuery(spec.server, name, type, {
            recursive: q.recursive ?? true,
            timeoutMs: q.timeoutMs ?? timeoutMs,
            signal: q.signal,
            tls: { servername: isIP(spec.servername) ? undefined : spec.servername, ...opts.tls },
          }),
      };
    case 'doh':
      return {
        label: spec.label,
        query: (name, type, q = {}) =>
          dohQuery(spec.url, name, type, { recursive: q.recursive ?? true, timeoutMs: q.timeoutMs ?? timeoutMs, signal: q.signal }),
      };
  }
}

/** A client for one server given as host/port (authoritative servers, the lab). */
export function serverClient(server: HostPort, label = formatHostPort(server), opts: ClientOptions = {}): DnsClient {
  return createClient({ kind: 'dns', label, servers: [server] }, opts);
}

// ---------------------------------------------------------------------------------------------
// Wire helpers

/**
 * Encoded queries by name, type, RD bit and EDNS size, with id 0: a probe asks the same few
 * hundred questions every interval, and dns2 writes a message bit by bit (~9 % of the probe's
 * JavaScript time on the footprint workload). Emptied when full, so odd names cannot grow it.
 */
const encoded = new Map<string, Buffer>();
const ENCODED_MAX = 4096;

/** A query message (a fresh buffer: the caller may hold it while it is sent). */
export function buildQuery(name: string, type: QType, recursive: boolean, id: number, ednsPayload?: number): Buffer {
  const key = `${type} ${recursive ? 1 : 0} ${ednsPayload ?? 0} ${name}`;
  let q = encoded.get(key);
  if (!q) {
    q = encodeQuery(name, type, recursive, ednsPayload);
    if (encoded.size >= ENCODED_MAX) encoded.clear();
    encoded.set(key, q);
  }
  const out = Buffer.from(q);
  out.writeUInt16BE(id, 0);
  return out;
}

/** dns2's encoding of a query with id 0. */
export function encodeQuery(name: string, type: QType, recursive: boolean, ednsPayload?: number): Buffer {
  const p = new Packet();
  p.header.id = 0;
  p.header.rd = recursive ? 1 : 0;
  p.questions.push({ name, type: QTYPE[type], class: Packet.CLASS.IN } as Packet['questions'][number]);
  if (ednsPayload) {
    // dns2's typings omit the options argument its runtime takes.
    const edns = (Packet.Resource.EDNS as unknown as (rdata: object[], o: { udpPayloadSize: number }) => Packet['additionals'][number])([], {
      udpPayloadSize: ednsPayload,
    });
    p.additionals.push(edns);
  }
  return p.toBuffer();
}

interface Expect {
  id: number | null;
  name: string;
  type: QType;
}

/** Parses and checks one reply; throws DnsError for anything that is not our answer. */
export function parseReply(buf: Buffer, expect: Expect): Packet {
  if (buf.length < 12) throw new DnsError('dns_malformed', `reply of ${buf.length} bytes is shorter than a DNS header`);
  // Counts that cannot fit the message: reject before dns2's lenient parser tries (and
  // swallows an exception for) every one of up to 4 × 65535 records.
  const minSize = 12 + buf.readUInt16BE(4) * 5 + (buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10)) * 11;
  if (minSize > buf.length) throw new DnsError('dns_malformed', `reply of ${buf.length} bytes cannot hold the records its header counts`);
  let p: Packet;
  try {
    p = Packet.parse(buf);
  } catch (e) {
    throw new DnsError('dns_malformed', `reply does not parse (${buf.length} bytes): ${(e as Error).message}`);
  }
  const h = p.header;
  // dns2 skips records it cannot decode; a count that disagrees means a damaged message.
  if (p.answers.length !== h.ancount || p.authorities.length !== h.nscount || p.questions.length !== h.qdcount) {
    throw new DnsError(
      'dns_malformed',
      `reply sections do not match their counts (${buf.length} bytes; qd ${p.questions.length}/${h.qdcount}, an ${p.answers.length}/${h.ancount}, ns ${p.authorities.length}/${h.nscount})`,
    );
  }
  if (expect.id !== null && h.id !== expect.id) throw new DnsError('dns_id_mismatch', `reply id ${h.id} does not match query id ${expect.id}`);
  if (h.qr !== 1) throw new DnsError('dns_bad_reply', 'reply is not a response (QR=0)');
  const q = p.questions[0];
  if (h.qdcount > 0 && (!q || bareName(q.name) !== bareName(expect.name) || q.type !== QTYPE[expect.type])) {
    throw new DnsError('dns_bad_reply', `reply question ${q?.name ?? '?'} type ${q?.type ?? '?'} is not ${expect.name} ${expect.type}`);
  }
  return p;
}

function normalise(r: Packet['answers'][number]): DnsRecord {
  const base = { name: String(r.name ?? '').toLowerCase(), type: r.type, ttl: r.ttl };
  switch (r.type) {
    case QTYPE.A:
    case QTYPE.AAAA:
      return { ...base, value: r.address ?? '' };
    case QTYPE.MX:
      return { ...base, value: (r.exchange ?? '').toLowerCase(), priority: r.priority ?? 0 };
    case QTYPE.PTR:
    case QTYPE.CNAME:
      return { ...base, value: (r.domain ?? '').toLowerCase() };
    case QTYPE.NS:
      return { ...base, value: (r.ns ?? '').toLowerCase() };
    case QTYPE.TXT: {
      const strings = Array.isArray(r.data) ? r.data : [String(r.data ?? '')];
      return { ...base, value: strings.join(''), strings };
    }
    case QTYPE.SOA:
      return { ...base, value: `${r.primary ?? ''} ${r.admin ?? ''} ${r.serial ?? 0} ${r.minimum ?? 0}` };
    default: {
      const data = (r as { data?: unknown }).data;
      return { ...base, value: Buffer.isBuffer(data) ? data.toString('hex') : '' };
    }
  }
}

function toResponse(p: Packet, transport: Transport, server: string, started: number): DnsResponse {
  return {
    rcode: p.header.rcode,
    rcodeName: rcodeName(p.header.rcode),
    aa: p.header.aa === 1,
    answers: p.answers.map(normalise),
    authorities: p.authorities.map(normalise),
    transport,
    server,
    durationMs: performance.now() - started,
  };
}

function abortError(signal: AbortSignal | undefined): DnsError {
  const reason = signal?.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new DnsError('dns_aborted', `query aborted${reason}`);
}

function networkError(e: unknown, server: string): DnsError {
  const err = e as NodeJS.ErrnoException;
  return new DnsError('dns_network', `${server}: ${err.code ?? ''} ${err.message}`.trim());
}

// ---------------------------------------------------------------------------------------------
// UDP (+ TCP on truncation)

/**
 * One classic exchange returning dns2's parsed packet (for the lab's caching resolvers, which
 * forward records as they came).
 */
export async function exchange(
  server: HostPort,
  name: string,
  type: QType,
  o: { recursive?: boolean; timeoutMs?: number; signal?: AbortSignal; ednsPayload?: number } = {},
): Promise<{ packet: Packet; transport: Transport }> {
  const co: ClassicOpts = { recursive: o.recursive ?? true, timeoutMs: o.timeoutMs ?? 3000, payload: o.ednsPayload ?? 1232, signal: o.signal };
  const p = await udpExchange(server, name, type, co);
  if (p.header.tc !== 1) return { packet: p, transport: 'udp' };
  return { packet: await streamExchange(server, name, type, co), transport: 'tcp' };
}

interface ClassicOpts {
  recursive: boolean;
  timeoutMs: number;
  payload: number;
  signal: AbortSignal | undefined;
}

async function classicQuery(server: HostPort, name: string, type: QType, o: ClassicOpts): Promise<DnsResponse> {
  const started = performance.now();
  const label = formatHostPort(server, 0);
  const p = await udpExchange(server, name, type, o);
  if (p.header.tc !== 1) return toResponse(p, 'udp', label, started);
  try {
    const t = await streamExchange(server, name, type, { recursive: o.recursive, timeoutMs: o.timeoutMs, signal: o.signal });
    return toResponse(t, 'tcp', label, started);
  } catch (e) {
    if (e instanceof DnsError && e.code !== 'dns_aborted') throw new DnsError('dns_truncated', `truncated over UDP and TCP failed: ${e.message}`);
    throw e;
  }
}

function udpExchange(server: HostPort, name: string, type: QType, o: ClassicOpts): Promise<Packet> {
  if (o.signal?.aborted) return Promise.reject(abortError(o.signal));
  const id = randomInt(0x10000);
  const query = buildQuery(name, type, o.recursive, id, o.payload);
  const family = isIP(server.host) === 6 ? 'udp6' : 'udp4';
  const sock = createSocket(family);
  const label = formatHostPort(server, 0);
  return new Promise<Packet>((resolve, reject) => {
    let mismatch: DnsError | null = null;
    let done = false;
    const finish = (err: DnsError | null, p?: Packet) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      sock.close();
      if (err) reject(err);
      else resolve(p as Packet);
    };
    const onAbort = () => finish(abortError(o.signal));
    const timer = setTimeout(() => finish(mismatch ?? new DnsError('dns_timeout', `${label}: no reply over UDP within ${o.timeoutMs} ms`)), o.timeoutMs);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (e) => finish(networkError(e, label)));
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      // Off-path datagrams are not the resolver's reply: ignore them like any stub does.
      if (rinfo.port !== server.port || !sameAddress(rinfo.address, server.host)) return;
      try {
        finish(null, parseReply(msg, { id, name, type }));
      } catch (e) {
        // A late reply to an earlier query may share the port: keep waiting, but remember it
        // so a timeout says what actually arrived.
        if (e instanceof DnsError && (e.code === 'dns_id_mismatch' || e.code === 'dns_bad_reply')) mismatch = e;
        else finish(e as DnsError);
      }
    });
    sock.send(query, server.port, server.host, (e) => {
      if (e) finish(networkError(e, label));
    });
  });
}

function sameAddress(a: string, b: string): boolean {
  return a === b || a.replace(/^::ffff:/, '') === b.replace(/^::ffff:/, '');
}

// ---------------------------------------------------------------------------------------------
// TCP and DoT

interface StreamOpts {
  recursive: boolean;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  tls?: ConnectionOptions;
}

async function streamQuery(server: HostPort, name: string, type: QType, o: StreamOpts): Promise<DnsResponse> {
  const started = performance.now();
  const p = await streamExchange(server, name, type, o);
  return toResponse(p, o.tls ? 'dot' : 'tcp', formatHostPort(server, 0), started);
}

function streamExchange(server: HostPort, name: string, type: QType, o: StreamOpts): Promise<Packet> {
  if (o.signal?.aborted) return Promise.reject(abortError(o.signal));
  const id = randomInt(0x10000);
  const query = buildQuery(name, type, o.recursive, id);
  const frame = Buffer.alloc(2 + query.length);
  frame.writeUInt16BE(query.length, 0);
  query.copy(frame, 2);
  const label = formatHostPort(server, 0);
  const sock: Socket = o.tls ? tlsConnect({ host: server.host, port: server.port, ...o.tls }) : netConnect({ host: server.host, port: server.port });
  return new Promise<Packet>((resolve, reject) => {
    let done = false;
    let buf = Buffer.alloc(0);
    const finish = (err: DnsError | null, p?: Packet) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      if (err) reject(err);
      else resolve(p as Packet);
    };
    const onAbort = () => finish(abortError(o.signal));
    const timer = setTimeout(
      () => finish(new DnsError('dns_timeout', `${label}: no reply over ${o.tls ? 'TLS' : 'TCP'} within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
    o.signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (e) =>
      finish(
        o.tls && /certificate|self.signed|altname|SSL/i.test(e.message) ? new DnsError('dns_network', `${label}: TLS: ${e.message}`) : networkError(e, label),
      ),
    );
    sock.on(o.tls ? 'secureConnect' : 'connect', () => sock.write(frame));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) return;
      try {
        finish(null, parseReply(buf.subarray(2, 2 + len), { id, name, type }));
      } catch (e) {
        finish(e as DnsError);
      }
    });
    sock.on('end', () => finish(new DnsError('dns_malformed', `${label}: connection closed after ${buf.length} bytes, before a whole reply`)));
  });
}

// ---------------------------------------------------------------------------------------------
// DoH (RFC 8484, POST)

async function dohQuery(
  url: string,
  name: string,
  type: QType,
  o: { recursive: boolean; timeoutMs: number; signal: AbortSignal | undefined },
): Promise<DnsResponse> {
  if (o.signal?.aborted) throw abortError(o.signal);
  const started = performance.now();
  // RFC 8484 §4.1: id 0 so the message is cache-friendly.
  const query = buildQuery(name, type, o.recursive, 0);
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let status: number;
  let ctype: string;
  let body: Buffer;
  try {
    const r = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
      body: query,
      signal,
      // The largest DNS message.
      maxBytes: 65_535,
    });
    status = r.status;
    ctype = String(r.headers['content-type'] ?? '');
    body = r.body;
  } catch (e) {
    if (o.signal?.aborted) throw abortError(o.signal);
    if (timeout.aborted) throw new DnsError('dns_timeout', `${url}: no DoH reply within ${o.timeoutMs} ms`);
    throw networkError(e, url);
  }
  if (status !== 200) throw new DnsError('dns_doh_http', `${url}: HTTP ${status}`);
  if (!ctype.startsWith('application/dns-message'))
    throw new DnsError('dns_doh_http', `${url}: content type ${ctype || '(none)'} is not application/dns-message`);
  const p = parseReply(body, { id: null, name, type });
  return toResponse(p, 'doh', new URL(url).host, started);
}

// ---------------------------------------------------------------------------------------------
// Helpers for checks

/** Records of one type from the answer section (CNAME chains followed implicitly). */
export function recordsOf(r: DnsResponse, type: QType): DnsRecord[] {
  return r.answers.filter((a) => a.type === QTYPE[type]);
}

/** Throws the DnsError an RCODE stands for; NOERROR and (if allowed) NXDOMAIN pass. */
export function assertRcode(r: DnsResponse, what: string, allowNx = false): void {
  if (r.rcode === 0 || (allowNx && r.rcode === 3)) return;
  const msg = `${what}: ${r.rcodeName} from ${r.server}`;
  if (r.rcode === 2) throw new DnsError('dns_servfail', msg, r.rcodeName);
  if (r.rcode === 3) throw new DnsError('dns_nxdomain', msg, r.rcodeName);
  if (r.rcode === 5) throw new DnsError('dns_refused', msg, r.rcodeName);
  throw new DnsError('dns_rcode', msg, r.rcodeName);
}

/** Smallest TTL of a set of records, or null when empty. */
export function minTtl(records: readonly DnsRecord[]): number | null {
  return records.length === 0 ? null : Math.min(...records.map((r) => r.ttl));
}
