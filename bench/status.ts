/**
 * `npm run bench:status`: what the status page costs a collector holding a fleet of 500 probes
 * (BENCH_PROBES), and whether serving it delays pushes.
 *
 * A collector process is filled by every probe pushing one interval (bench/lib/content.ts, with
 * each probe's `system` resolver named after the probe, so the page lists ~650 resolver rows and
 * 500 probe rows). Then, over HTTP on loopback (time to the last byte):
 *  - render: GET / and GET /v1/status, each request 1.05 s after the last so the page's
 *    one-second cache has expired and every request builds the snapshot and renders it again;
 *    the peer in the same run is GET /metrics of the same collector (what Prometheus scrapes);
 *  - pushes: one closed-loop pusher for BENCH_SECONDS with nothing else, then while another
 *    client requests GET / back to back; push p50/p99/max of both.
 *
 * Env: BENCH_PROBES (default 500), BENCH_RENDERS (default 12), BENCH_SECONDS (default 3).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpus, loadavg } from 'node:os';
import { request } from 'undici';
import type { CheckResult } from '../protocol/results.js';
import { startCollectorProcess, type CollectorProcess } from './lib/bench-processes.js';
import { tokenFor } from './lib/plan.js';
import { batchBody, probeId, probeResults } from './lib/content.js';
import { closedLoop, fmt, peerRequests, quantile, sendAll, table } from './lib/load.js';

const PROBES = Number(process.env.BENCH_PROBES ?? 500);
const RENDERS = Number(process.env.BENCH_RENDERS ?? 12);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

let collector: CollectorProcess | undefined;
process.once('SIGINT', () => void collector?.stop().then(() => process.exit(130)));

async function timed(url: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const r = await request(url);
  const text = await r.body.text();
  const ms = performance.now() - t0;
  if (r.statusCode !== 200) throw new Error(`GET ${url}: ${r.statusCode} ${text.slice(0, 200)}`);
  return { ms, bytes: text.length };
}

async function renders(url: string): Promise<{ p50: number; max: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RENDERS; i++) {
    await sleep(1050);
    const r = await timed(url);
    times.push(r.ms);
    bytes = r.bytes;
  }
  return { p50: quantile(times, 0.5), max: quantile(times, 1), bytes };
}

async function main(): Promise<void> {
  const started = Date.now();
  process.stdout.write(
    `bench:status — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}\n`,
  );
  const ids = Array.from({ length: PROBES }, (_, i) => probeId(i));
  const results: CheckResult[][] = ids.map((id, i) =>
    probeResults(i).map((r) => ((r.type === 'dns' || r.type === 'ttl') && r.resolver === 'system' ? { ...r, resolver: `system@${id}` } : r)),
  );
  const bodies = results.map((r, i) => batchBody(i, r));
  const { post } = peerRequests(ids, bodies, [], tokenFor);

  collector = await startCollectorProcess({ probes: ids });
  const url = collector.url;
  await sendAll(
    url,
    ids.map((_, i) => post(i)),
    8,
  );
  const status = JSON.parse(await (await request(`${url}/v1/status`)).body.text()) as {
    resolvers: { resolvers: unknown[] }[];
    probes: unknown[];
    delivery: unknown[];
  };
  const resolverRows = status.resolvers.reduce((n, r) => n + r.resolvers.length, 0);
  process.stdout.write(
    `filled: ${PROBES} probes; the page lists ${resolverRows} resolver rows, ${status.delivery.length} delivery rows, ${status.probes.length} probes\n`,
  );

  const page = await renders(`${url}/`);
  const json = await renders(`${url}/v1/status`);
  const metrics = await renders(`${url}/metrics`);
  process.stdout.write(
    `${table(
      ['GET', 'p50 ms', 'max ms', 'KiB'],
      [
        ['/ (status page)', fmt(page.p50, 1), fmt(page.max, 1), fmt(page.bytes / 1024, 0)],
        ['/v1/status', fmt(json.p50, 1), fmt(json.max, 1), fmt(json.bytes / 1024, 0)],
        ['/metrics (peer)', fmt(metrics.p50, 1), fmt(metrics.max, 1), fmt(metrics.bytes / 1024, 0)],
      ],
    )}\n`,
  );
  process.stdout.write(
    `ratio: status page = ${fmt(page.p50 / metrics.p50, 2)}× the /metrics scrape of the same collector; target < 50 ms: ${page.p50 < 50 ? 'met' : 'NOT met'} (p50 ${fmt(page.p50, 1)} ms)\n`,
  );

  const idle = await closedLoop(url, post, { concurrency: 1, durationMs: SECONDS * 1000, warmupMs: 300 });
  let stop = false;
  let reads = 0;
  const reader = (async () => {
    while (!stop) {
      await timed(`${url}/`);
      reads++;
    }
  })();
  const busy = await closedLoop(url, post, { concurrency: 1, durationMs: SECONDS * 1000, warmupMs: 300 });
  stop = true;
  await reader;
  if (idle.errors + busy.errors > 0) throw new Error(`pushes failed: ${idle.firstError ?? busy.firstError}`);
  const lat = (r: { latenciesMs: number[] }) => [0.5, 0.99, 1].map((q) => fmt(quantile(r.latenciesMs, q), 1)).join(' / ');
  process.stdout.write(
    `${table(
      ['pushes', 'p50 / p99 / max ms', 'pushes', 'page reads'],
      [
        ['idle', lat(idle), String(idle.requests), '0'],
        ['while GET / back to back', lat(busy), String(busy.requests), String(reads)],
      ],
    )}\n`,
  );
  process.stdout.write(`ratio: push p99 while the page is read = ${fmt(quantile(busy.latenciesMs, 0.99) / quantile(idle.latenciesMs, 0.99), 2)}× idle\n`);
  process.stdout.write(`\ndone in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:status failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => collector?.stop());
