/**
 * Helpers for the DNS-side check tests: a check context over a plan with an in-memory result
 * history, a batch for the test collector, and tiny misbehaving DNS servers (the allowed mocks:
 * garbage, truncation without TCP, wrong ids, silence).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { setMaxListeners } from 'node:events';
import { pino } from 'pino';
import type { CheckContext, ResultLog } from '../../probe/check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { CheckResult, CheckType } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';
import { testPlan } from './plan.js';
import type { DnsWorld } from '../../lab/dns/world.js';

export class MemoryHistory implements ResultLog {
  readonly results: CheckResult[] = [];
  add(out: CheckResult | CheckResult[]): void {
    for (const r of Array.isArray(out) ? out : [out]) this.results.push(r);
    this.results.sort((a, b) => a.startedAt - b.startedAt);
  }
  since<T extends CheckType>(type: T, sinceMs: number): readonly Extract<CheckResult, { type: T }>[] {
    return this.results.filter((r): r is Extract<CheckResult, { type: T }> => r.type === type && r.startedAt >= sinceMs);
  }
}

export function makeCtx(
  o: { history?: MemoryHistory; state?: Map<string, unknown>; now?: () => number; signal?: AbortSignal } = {},
): CheckContext & { history: MemoryHistory } {
  const signal = o.signal ?? new AbortController().signal;
  // Tests share one signal across many parallel queries (the runtime gives one per run).
  setMaxListeners(1000, signal);
  return {
    signal,
    probe: { id: 'p-eu', region: 'eu' },
    log: pino({ level: 'silent' }),
    now: o.now ?? Date.now,
    state: o.state ?? new Map(),
    history: o.history ?? new MemoryHistory(),
  };
}

/** A test plan pointed at a DNS world: resolvers, authoritative server, lookups, MTA-STS. */
export function worldPlan(
  w: DnsWorld,
  over: { cutover?: Record<string, unknown>; probes?: Record<string, unknown>; dns?: Record<string, unknown> } = {},
): PlanConfig {
  return testPlan({
    cutover: { dnsbl: ['bl.lab.test', 'refuse.lab.test'], ...over.cutover },
    probes: {
      resolvers: [w.resolvers.honest.address, w.resolvers.ignore.address, w.resolvers.clamp.address, w.resolvers.stale.address],
      authoritative: [w.auth.address],
      dns: {
        query_timeout: '1s',
        lookup_resolver: w.resolvers.honest.address,
        ttl_allowance: '1s',
        mta_sts_url: `${w.mtaStsUrl}/.well-known/mta-sts.txt`,
        ...over.dns,
      },
      ...over.probes,
    },
  });
}

let seq = 0;
export function batchOf(results: CheckResult[], probe = { id: 'p-eu', region: 'eu' }): Batch {
  return {
    probe: { ...probe, version: 'test' },
    batch: { id: `b-${randomBytes(8).toString('hex')}`, seq: seq++, createdAt: Date.now() },
    results,
  };
}

/** A UDP "DNS server" answering every query with `reply(query)` (null: silence). */
export async function fakeUdpServer(
  reply: (query: Buffer) => Buffer | Buffer[] | null,
  host = '127.0.0.1',
): Promise<{ port: number; address: string; received: number; close(): Promise<void> }> {
  const sock: UdpSocket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const state = { received: 0 };
  sock.on('message', (msg, rinfo) => {
    state.received++;
    const out = reply(msg);
    for (const b of out === null ? [] : Array.isArray(out) ? out : [out]) sock.send(b, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, host, r));
  const port = sock.address().port;
  return {
    port,
    address: `${host}:${port}`,
    get received() {
      return state.received;
    },
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

/** A DNS header for a reply to `query`: same id, QR=1, the given flags/rcode, question copied. */
export function replyHeader(query: Buffer, o: { id?: number; tc?: boolean; rcode?: number; ancount?: number } = {}): Buffer {
  const out = Buffer.from(query);
  out.writeUInt16BE(o.id ?? query.readUInt16BE(0), 0);
  out[2] = 0x80 | (o.tc ? 0x02 : 0) | ((query[2] ?? 0) & 0x01);
  out[3] = 0x80 | (o.rcode ?? 0);
  out.writeUInt16BE(o.ancount ?? 0, 6);
  // Drop the query's additional (EDNS) section: keep header + question.
  out.writeUInt16BE(0, 10);
  const qEnd = questionEnd(query);
  return out.subarray(0, qEnd);
}

function questionEnd(q: Buffer): number {
  let i = 12;
  while (i < q.length && q[i] !== 0) i += (q[i] ?? 0) + 1;
  return i + 1 + 4;
}
