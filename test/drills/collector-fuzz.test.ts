/**
 * Drill: 10 000 random malformed pushes (fast-check) against a collector running as its own
 * process. Every one is refused with a 4xx and counted; afterwards the collector still takes a
 * valid push, its exposition is still `promtool check metrics`-clean, and its memory did not grow
 * with the garbage it was sent: the memory live after a full garbage collection (heap in use and
 * Buffers), since RSS follows V8's heap sizing (on Node 24 it grew 120 MiB over the drill and
 * shrank again later, with the live heap unchanged).
 */
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { Pool, request } from 'undici';
import { rssOf, startCollectorProcess, type CollectorProcess } from '../../bench/lib/bench-processes.js';
import { malformedPush, validBatch, type DrillRequest } from '../support/drill-requests.js';
import { tokenFor } from '../../bench/lib/plan.js';

const RUNS = 10_000;
const WARMUP = 300;

let collector: CollectorProcess;
before(async () => {
  collector = await startCollectorProcess({ probes: ['p-eu', 'p-us'], liveBytes: true });
});
after(async () => {
  await collector?.stop();
});

async function send(reqs: readonly DrillRequest[]): Promise<{ req: DrillRequest; status: number; body: string }[]> {
  const pool = new Pool(collector.url, { connections: 8 });
  const out: { req: DrillRequest; status: number; body: string }[] = [];
  let i = 0;
  const loop = async () => {
    for (let req = reqs[i++]; req; req = reqs[i++]) {
      const r = await pool.request({ origin: collector.url, method: req.method, path: req.path, headers: req.headers, body: req.body });
      out.push({ req, status: r.statusCode, body: await r.body.text() });
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, loop));
  } finally {
    await pool.close();
  }
  return out;
}

async function pushValid(): Promise<number> {
  const r = await request(`${collector.url}/v1/results`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenFor('p-eu')}`, 'content-type': 'application/json' },
    body: JSON.stringify(validBatch()),
  });
  await r.body.dump();
  return r.statusCode;
}

async function scrape(): Promise<string> {
  const r = await request(`${collector.url}/metrics`);
  assert.equal(r.statusCode, 200);
  return r.body.text();
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function rejectionsTotal(text: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith('mailprobe_collector_rejections_total{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

test(`${RUNS} malformed pushes: all 4xx and counted; collector alive, promtool-clean, memory bounded`, async (t) => {
  assert.equal(await pushValid(), 200, 'a valid push is accepted before the drill');
  const clean = promtoolCheck(await scrape());
  assert.equal(clean.status, 0, `exposition before the drill: ${clean.output}`);

  const seed = Date.now() ^ (process.pid << 8);
  const [warm, ...rest] = [WARMUP, RUNS].map((n, k) => fc.sample(malformedPush, { numRuns: n, seed: seed + k }));
  // The warm-up lets JIT, ajv and the heap settle before the memory baseline.
  await send(warm ?? []);
  const rss0 = rssOf(collector.pid);
  const live0 = await collector.liveBytes();
  const answers = await send(rest[0] ?? []);
  const rss1 = rssOf(collector.pid);
  const live1 = await collector.liveBytes();

  assert.equal(answers.length, RUNS);
  const bad = answers.filter((a) => a.status < 400 || a.status > 499);
  assert.deepEqual(
    bad.slice(0, 5).map((a) => ({
      kind: a.req.kind,
      status: a.status,
      answer: a.body.slice(0, 200),
      request: `${a.req.method} ${a.req.path} ${(a.req.body ?? '').slice(0, 300)}`,
    })),
    [],
    `fast-check seed ${seed + 1}: ${bad.length} of ${RUNS} malformed pushes were not refused with a 4xx`,
  );
  for (const a of answers) assert.match(a.body, /"error":"[a-z_]+"/, `every refusal names its code (${a.req.kind})`);
  const kinds = new Set(answers.map((a) => a.req.kind));
  assert.ok(kinds.size >= 10, `the generator covered ${[...kinds].join(', ')}`);

  const growth = (live1 - live0) / 2 ** 20;
  const byStatus = new Map<number, number>();
  for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
  t.diagnostic(
    `statuses ${JSON.stringify(Object.fromEntries(byStatus))}; kinds ${[...kinds].join(' ')}; RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MiB; live after GC ${(live0 / 2 ** 20).toFixed(1)} → ${(live1 / 2 ** 20).toFixed(1)} MiB`,
  );
  // A leak of 1 KiB per push would be 10 MiB here.
  assert.ok(
    growth < 8,
    `collector memory live after GC grew by ${growth.toFixed(1)} MiB over ${RUNS} malformed pushes (from ${(live0 / 2 ** 20).toFixed(1)} MiB)`,
  );

  assert.equal(collector.child.exitCode, null, 'the collector process is alive');
  const health = await request(`${collector.url}/healthz`);
  await health.body.dump();
  assert.equal(health.statusCode, 200);
  assert.equal(await pushValid(), 200, 'a valid push is accepted after the drill');

  const text = await scrape();
  assert.equal(rejectionsTotal(text), WARMUP + RUNS, 'every refusal is counted in mailprobe_collector_rejections_total');
  const check = promtoolCheck(text);
  assert.equal(check.status, 0, `exposition after the drill: ${check.output}`);
});
