/**
 * Closed-loop load: `concurrency` pushers, each sending its next request as soon as the last one
 * answered, over keep-alive connections (undici Pool), with per-request latency.
 */
import { Pool } from 'undici';

export interface Req {
  method: 'POST' | 'PUT';
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** First non-2xx answer, for the report. */
  firstError?: string;
  seconds: number;
  latenciesMs: number[];
}

/** Sends `next(i)` for i = 0, 1, 2… from `concurrency` loops until `durationMs` has passed. */
export async function closedLoop(
  origin: string,
  next: (i: number) => Req,
  opts: { concurrency: number; durationMs: number; warmupMs?: number },
): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: opts.concurrency, pipelining: 1 });
  let i = 0;
  const res: LoadResult = { requests: 0, errors: 0, seconds: 0, latenciesMs: [] };
  const warmEnd = performance.now() + (opts.warmupMs ?? 0);
  const end = warmEnd + opts.durationMs;
  let measuredTo = warmEnd;
  const loop = async () => {
    while (performance.now() < end) {
      const req = next(i++);
      const t0 = performance.now();
      const r = await pool.request({ ...req, origin });
      const text = await r.body.text();
      const t1 = performance.now();
      // A request counts if it ended after the warm-up (one slow request can span all of it).
      if (t1 < warmEnd) continue;
      measuredTo = t1;
      res.requests++;
      res.latenciesMs.push(t1 - t0);
      if (r.statusCode >= 300) {
        res.errors++;
        res.firstError ??= `${r.statusCode} ${text.slice(0, 300)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  res.seconds = (measuredTo - warmEnd) / 1000;
  await pool.close();
  return res;
}

/** Sends every request once, `concurrency` at a time; throws on a non-2xx answer. */
export async function sendAll(origin: string, reqs: readonly Req[], concurrency = 8): Promise<void> {
  const pool = new Pool(origin, { connections: concurrency });
  let i = 0;
  const loop = async () => {
    while (i < reqs.length) {
      const req = reqs[i++];
      if (!req) break;
      const r = await pool.request({ ...req, origin });
      const text = await r.body.text();
      if (r.statusCode >= 300) throw new Error(`${req.method} ${req.path}: ${r.statusCode} ${text.slice(0, 300)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } finally {
    await pool.close();
  }
}

/** The q-quantile (0..1) of unsorted values (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
}

export const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** Prints rows as an aligned table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c] ?? 0) : v.padStart(widths[c] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * The same content as requests to each peer, round-robin over the probes: a batch POSTed to the
 * collector (`bodies[i](seq)` gives a body with a fresh batch id) or the probe's exposition PUT
 * into a Pushgateway group.
 */
export function peerRequests(ids: readonly string[], bodies: readonly ((seq: number) => string)[], texts: readonly string[], tokenOf: (id: string) => string) {
  const n = ids.length;
  let seq = 0;
  const post = (i: number): Req => ({
    method: 'POST',
    path: '/v1/results',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenOf(ids[i % n] ?? '')}` },
    body: (bodies[i % n] ?? (() => ''))(seq++),
  });
  const put = (i: number): Req => ({
    method: 'PUT',
    path: `/metrics/job/mailprobe/instance/${ids[i % n] ?? ''}`,
    headers: { 'content-type': 'text/plain; version=0.0.4' },
    body: texts[i % n] ?? '',
  });
  return { post, put };
}
