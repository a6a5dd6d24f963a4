/**
 * `npm run bench:memory`: the collector's memory, measured in a collector process (the load
 * generator pinned to another core than the server, see bench-processes.ts).
 *
 *  1. Per remote-written series (issue: ≤ 0.5 KB): a collector with remote write to a receiver in
 *     this process (accepts every request) and `results_on_metrics: false`; N probes push one
 *     interval each; once every sample went out, the live heap after a full collection (and the
 *     RSS) less the same figures before the first push, per series written (each histogram
 *     bucket, _sum and _count counts as a series, as on the wire).
 *  2. Flat RSS at steady cardinality: a collector with the defaults (/metrics), P probes pushing
 *     K intervals per push (a spool replay: K × 33 results, the same series) round-robin from
 *     BENCH_PUSHERS connections for R results in all; RSS and live heap sampled every R/10
 *     results. Flat: the last sample within ±10 % of the first one after warm-up (10 %).
 *     10M results (the figure): `BENCH_RESULTS=10000000 npm run bench:memory`, ~7 min
 *     on an idle 2-core machine with the defaults (~25k results/s).
 *
 * Both collectors run with the memory settings of `mailprobe collector` (config/node-runtime.ts).
 *
 * Env: BENCH_RW_PROBES (default 500), BENCH_PROBES (default 100), BENCH_RESULTS (default 1000000),
 * BENCH_INTERVALS (intervals per push in part 2, default 4), BENCH_PUSHERS (default 8),
 * BENCH_PARTS (default "1,2").
 */
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { tokenFor } from './lib/plan.js';
import { pinLoadGenerator, rssOf, startCollectorProcess, type CollectorProcess } from './lib/bench-processes.js';
import { batchBody, probeExposition, probeId, probeResults, seriesCount } from './lib/content.js';
import { fmt, peerRequests, sendAll, table } from './lib/load.js';

const RW_PROBES = Number(process.env.BENCH_RW_PROBES ?? 500);
const PROBES = Number(process.env.BENCH_PROBES ?? 100);
const RESULTS = Number(process.env.BENCH_RESULTS ?? 1_000_000);
const INTERVALS = Number(process.env.BENCH_INTERVALS ?? 4);
const PUSHERS = Number(process.env.BENCH_PUSHERS ?? 8);
const PARTS = (process.env.BENCH_PARTS ?? '1,2').split(',');
const MiB = 2 ** 20;

let running: CollectorProcess | undefined;
process.once('SIGINT', () => void running?.stop().then(() => process.exit(130)));

/** A remote-write receiver that accepts everything and counts the requests. */
async function receiver(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let n = 0;
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const port = (srv.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/api/v1/write`, requests: () => n, close: () => new Promise((ok) => srv.close(() => ok())) };
}

async function queuedOf(url: string): Promise<number> {
  const r = await fetch(`${url}/metrics`);
  const m = /^mailprobe_collector_remote_write_queue_samples (\S+)$/m.exec(await r.text());
  return Number(m?.[1] ?? Number.NaN);
}

async function perRemoteWrittenSeries(): Promise<string> {
  const ids = Array.from({ length: RW_PROBES }, (_, i) => probeId(i));
  const results = ids.map((_, i) => probeResults(i));
  const series = (await Promise.all(results.map((r, i) => probeExposition(i, r)))).reduce((n, t) => n + seriesCount(t), 0);
  const rx = await receiver();
  const c = await startCollectorProcess({
    probes: ids,
    liveBytes: true,
    collector: { remote_write: { url: rx.url, results_on_metrics: false }, max_series_per_probe: 100_000 },
  });
  running = c;
  try {
    const live0 = await c.liveBytes();
    const rss0 = rssOf(c.pid);
    const { post } = peerRequests(
      ids,
      results.map((r, i) => batchBody(i, r)),
      [],
      tokenFor,
    );
    await sendAll(
      c.url,
      ids.map((_, i) => post(i)),
      8,
    );
    for (let i = 0; i < 120 && (await queuedOf(c.url)) > 0; i++) await new Promise((r) => setTimeout(r, 500));
    const live = (await c.liveBytes()) - live0;
    const rss = rssOf(c.pid) - rss0;
    return (
      `${table(
        ['probes', 'series written', 'requests', 'live heap +MiB', 'B/series (heap)', 'RSS +MiB', 'B/series (RSS)', 'RSS MiB'],
        [
          [
            String(RW_PROBES),
            String(series),
            String(rx.requests()),
            fmt(live / MiB, 1),
            fmt(live / series, 0),
            fmt(rss / MiB, 1),
            fmt(rss / series, 0),
            fmt(rssOf(c.pid) / MiB, 0),
          ],
        ],
      )}\n` +
      `goal: ≤ 512 B per remote-written series → by RSS ${rss / series <= 512 ? 'met' : 'NOT met'}, by live heap ${live / series <= 512 ? 'met' : 'NOT met'}\n`
    );
  } finally {
    await c.stop();
    running = undefined;
    await rx.close();
  }
}

async function flatRss(): Promise<string> {
  const ids = Array.from({ length: PROBES }, (_, i) => probeId(i));
  const t0s = Date.now() - INTERVALS * 15_000;
  // K intervals 15 s apart: the same series, K times the results per push.
  const results = ids.map((_, i) => Array.from({ length: INTERVALS }, (_, k) => probeResults(i, t0s + k * 15_000)).flat());
  const perPush = results[0]?.length ?? 1;
  const series = (await Promise.all(results.map((r, i) => probeExposition(i, r.slice(0, r.length / INTERVALS))))).reduce((n, t) => n + seriesCount(t), 0);
  const c = await startCollectorProcess({ probes: ids, liveBytes: true });
  running = c;
  try {
    const { post } = peerRequests(
      ids,
      results.map((r, i) => batchBody(i, r)),
      [],
      tokenFor,
    );
    const pushes = Math.ceil(RESULTS / perPush);
    const step = Math.ceil(pushes / 10);
    const rows: string[][] = [];
    const rss: number[] = [];
    const t0 = performance.now();
    let sent = 0;
    while (sent < pushes) {
      const n = Math.min(step, pushes - sent);
      await sendAll(
        c.url,
        Array.from({ length: n }, (_, i) => post(sent + i)),
        PUSHERS,
      );
      sent += n;
      const live = await c.liveBytes();
      rss.push(rssOf(c.pid));
      rows.push([
        fmt((sent * perPush) / 1e6, 2),
        fmt((rss.at(-1) ?? 0) / MiB, 0),
        fmt(live / MiB, 1),
        fmt((sent * perPush) / ((performance.now() - t0) / 1000), 0),
      ]);
    }
    const first = rss[1] ?? rss[0] ?? 0;
    const last = rss.at(-1) ?? 0;
    const change = (last - first) / first;
    return (
      `${PROBES} probes, ${series} series (steady), ${perPush} results per push (${INTERVALS} intervals), ${PUSHERS} pushers, ${fmt(RESULTS / 1e6, 2)}M results in ${fmt((performance.now() - t0) / 1000, 0)} s\n` +
      `${table(['M results', 'RSS MiB', 'live heap MiB', 'results/s so far'], rows)}\n` +
      `RSS from the 2nd sample (after warm-up) to the last: ${change >= 0 ? '+' : ''}${fmt(change * 100, 1)} % → ${Math.abs(change) <= 0.1 ? 'flat (±10 %)' : 'not flat'}\n`
    );
  } finally {
    await c.stop();
    running = undefined;
  }
}

async function main(): Promise<void> {
  const pin = pinLoadGenerator();
  process.stdout.write(
    `bench:memory — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}; ${pin}\n\n`,
  );
  if (PARTS.includes('1')) process.stdout.write(`1. memory per remote-written series (results_on_metrics: false)\n${await perRemoteWrittenSeries()}\n`);
  if (PARTS.includes('2')) process.stdout.write(`2. RSS over many results at steady cardinality (defaults)\n${await flatRss()}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:memory failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
