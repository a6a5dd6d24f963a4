/**
 * Push load from wrk (Debian's package: C, requests made by LuaJIT), for benchmarks whose
 * latency figures must be the server's: `connections` keep-alive connections, closed loop (or
 * paced to a rate), latency measured by wrk from the moment a request is written.
 *
 * Not an in-process Node client: under bench:ingest's load the undici client's own garbage
 * collection stopped its event loop now and then (scavenges of 9–27 ms, growing with its heap,
 * and incremental marking steps of up to 28 ms: `--trace-gc` on the load generator, 2026-11-30),
 * and every such stop was added to each push in flight: the clusters of the slowest pushes
 * (34–69 ms) fell on the client's event-loop gaps of 31, 32 and 58 ms. wrk's latencies are taken
 * by C code between a write and the last byte of the answer.
 *
 *   const load = new WrkLoad([{ method: 'POST', path: '/v1/results', headers, head, rest }]);
 *   const r = await load.run(url, { connections: 8, seconds: 5, nonce: 'm1' });
 *   load.close();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runLoadTool } from './bench-processes.js';
import { peer } from '../../scripts/peers.mjs';

const SCRIPT = resolve(import.meta.dirname, 'wrk-push.lua');

/** One push: sent as `head` or, with `rest`, as `head + <fresh batch id> + rest`. */
export interface WrkPush {
  method: 'POST' | 'PUT';
  path: string;
  headers: Readonly<Record<string, string>>;
  head: string;
  rest?: string;
}

export interface WrkRun {
  connections: number;
  seconds: number;
  /** Batch ids of this run start with it: unique per run, so no push is a duplicate of an earlier run's. */
  nonce: string;
  /** Pushes per second over all connections; absent: closed loop. */
  rate?: number;
}

export interface WrkResult {
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Answers ≥ 400. */
  statusErrors: number;
  /** Connect, read, write errors and timeouts. */
  socketErrors: number;
}

/** A Lua string literal of `s` (a long bracket of a level `s` does not contain). */
function luaString(s: string): string {
  let level = 0;
  while (s.includes(`]${'='.repeat(level)}]`)) level++;
  const eq = '='.repeat(level);
  // A long bracket drops a newline right after its opening: add one for it to drop.
  return `[${eq}[\n${s}]${eq}]`;
}

export class WrkLoad {
  readonly #dir = mkdtempSync(join(tmpdir(), 'mailprobe-wrk-'));
  readonly #data = join(this.#dir, 'pushes.lua');
  readonly #wrk = peer('wrk');

  constructor(pushes: readonly WrkPush[]) {
    const rows = pushes.map((p) => {
      const headers = Object.entries(p.headers)
        .map(([k, v]) => `[ ${luaString(k)} ]=${luaString(v)}`)
        .join(',');
      const rest = p.rest === undefined ? '' : `,rest=${luaString(p.rest)}`;
      return `{method=${luaString(p.method)},path=${luaString(p.path)},headers={${headers}},head=${luaString(p.head)}${rest}}`;
    });
    writeFileSync(this.#data, `return {\n${rows.join(',\n')}\n}\n`);
  }

  /** One wrk run against `url` (on the load generator's core once pinning is on). */
  run(url: string, o: WrkRun): Promise<WrkResult> {
    const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '30s', '-s', SCRIPT, url];
    const env = { ...process.env, WRK_DATA: this.#data, WRK_NONCE: o.nonce, WRK_RATE: String(o.rate ?? 0) };
    return runLoadTool(this.#wrk, args, env).then(({ code, stdout, stderr }) => {
      const m = /^WRK_RESULT (\{.*\})$/m.exec(stdout);
      if (code !== 0 || !m?.[1]) throw new Error(`wrk exited with ${code}: ${(stderr || stdout).trim().slice(0, 500)}`);
      const j = JSON.parse(m[1]) as Record<string, number>;
      const ms = (k: string) => (j[k] ?? Number.NaN) / 1000;
      return {
        requests: j.requests ?? 0,
        seconds: (j.durationUs ?? 0) / 1e6,
        p50Ms: ms('p50Us'),
        p99Ms: ms('p99Us'),
        p999Ms: ms('p999Us'),
        maxMs: ms('maxUs'),
        statusErrors: j.statusErrors ?? 0,
        socketErrors: j.socketErrors ?? 0,
      };
    });
  }

  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
