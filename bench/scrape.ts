/**
 * `npm run bench:scrape`: the cost of a scrape of /metrics at 10k, 100k and 500k series, the
 * collector vs a Pushgateway holding the same series, and what a scrape does to pushes.
 *
 * For each size, ceil(size / ~300) probes push one interval each (bench/lib/content.ts), to a
 * fresh collector process and a fresh Pushgateway process (without the consistency check, so
 * filling it stays fast; a scrape does the same work either way). Then:
 *  - render: GET /metrics (no compression) a few times; median time to the last byte, taken by
 *    curl (C, reading into /dev/null: the time a Node client spent decoding ~13 MiB into a
 *    string, and its own garbage collections, were in the figure of both peers), size;
 *  - pushes under scrape: one closed-loop pusher for a few seconds with nothing else, then the
 *    same while a scraper scrapes /metrics back to back; push p50/p99/max of both. A push
 *    that waits for a render shows the server's event-loop stall (the collector renders on its
 *    only thread; the Pushgateway on other goroutines). Skipped above 20 MiB of exposition (500k),
 *    where one scrape is measured and a push would just wait for it. The scraper is a process
 *    of its own, as Prometheus is, on the load generator's core; it reads each body to the end
 *    and keeps nothing (see {@link startScraper}).
 *
 * The load generator (this process) runs on core 1, each server on core 0 (taskset; BENCH_PIN=0
 * turns it off), one server at a time; the collector runs compiled (dist/, built by the npm script).
 *
 * Env: BENCH_SERIES (default "10000,100000,500000"), BENCH_SECONDS (per push phase, default 2).
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { request } from 'undici';
import { tokenFor } from './lib/plan.js';
import { cpuSecondsOf, pinLoadGenerator, rssOf, runLoadTool, startCollectorProcess, startPushgateway, type PeerProcess } from './lib/bench-processes.js';
import { batchBody, probeExposition, probeId, probeResults, seriesCount } from './lib/content.js';
import { closedLoop, fmt, peerRequests, quantile, sendAll, table, type LoadResult, type Req } from './lib/load.js';
import { peer as peerBinary, requirePeers } from '../scripts/peers.mjs';

requirePeers(['prometheus-pushgateway', 'curl']);

const SIZES = (process.env.BENCH_SERIES ?? '10000,100000,500000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

const running = new Set<PeerProcess>();
async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
  running.clear();
}
process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));

interface Row {
  series: string;
  target: string;
  seriesExposed: number;
  renderMs: number;
  /** Server CPU time per scrape (all scrapes of the render phase averaged). */
  cpuMs: number;
  sizeMiB: number;
  scrapes: number;
  idle: [number, number, number];
  underScrape: [number, number, number];
  rssMiB: number;
}

async function scrapeOnce(url: string): Promise<string> {
  const r = await request(`${url}/metrics`);
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`scrape ${url}: ${r.statusCode}`);
  return text;
}

/** Time to the last byte of one GET /metrics by curl on the load generator's core, in ms (the body goes to /dev/null). */
async function curlScrapeMs(url: string): Promise<number> {
  const { code, stdout, stderr } = await runLoadTool(peerBinary('curl'), ['-s', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', `${url}/metrics`]);
  const [status, seconds] = stdout.trim().split(' ');
  if (code !== 0 || status !== '200') throw new Error(`curl ${url}/metrics: exit ${code}, ${(stdout + stderr).trim().slice(0, 300)}`);
  return 1000 * Number(seconds);
}

/** The scraper's loop: GET /metrics back to back on one keep-alive connection, each body read to its end and dropped; a `.` per scrape on stdout. */
const SCRAPER = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const once = () => http.get(process.argv[1], { agent }, (res) => {
  if (res.statusCode !== 200) { process.stderr.write('scrape: HTTP ' + res.statusCode); process.exit(1); }
  res.resume();
  res.on('end', () => { process.stdout.write('.'); once(); });
}).on('error', (err) => { process.stderr.write('scrape: ' + err.message); process.exit(1); });
once();
`;

/**
 * Scrapes `url`/metrics back to back from a child process until stopped; resolves the number of
 * complete scrapes. In this process it would share the pusher's event loop: decoding each 13 MiB
 * body into a string (and collecting it) stalled the pusher by tens of milliseconds per scrape,
 * which the push latencies then counted as the server's (at 100k series, the same collector build
 * and machine load: push p99 while scraping 128 ms with the scraper in this process, 23 ms with
 * it in its own).
 * Spawned after {@link pinLoadGenerator}, it runs on the load generator's core.
 */
function startScraper(url: string): { stop(): Promise<number> } {
  const child = spawn(process.execPath, ['-e', SCRAPER, `${url}/metrics`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let scrapes = 0;
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    scrapes += d.length;
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`scraper exited (${child.exitCode ?? child.signalCode}): ${stderr}`);
      child.kill('SIGTERM');
      await exited;
      return scrapes;
    },
  };
}

async function pushPhase(url: string, next: (i: number) => Req, scrapeUrl?: string): Promise<{ lat: [number, number, number]; scrapes: number }> {
  const scraper = scrapeUrl ? startScraper(scrapeUrl) : undefined;
  let r: LoadResult;
  try {
    r = await closedLoop(url, next, { concurrency: 1, durationMs: SECONDS * 1000, warmupMs: 300 });
  } catch (err) {
    await scraper?.stop().catch(() => 0);
    throw err;
  }
  const scrapes = (await scraper?.stop()) ?? 0;
  if (r.errors > 0) throw new Error(`pushes failed: ${r.firstError}`);
  return { lat: [quantile(r.latenciesMs, 0.5), quantile(r.latenciesMs, 0.99), quantile(r.latenciesMs, 1)], scrapes };
}

async function measure(peer: PeerProcess, label: string, target: string, fill: Req[], next: (i: number) => Req): Promise<Row> {
  const t0 = performance.now();
  await sendAll(peer.url, fill, 8);
  process.stdout.write(`  ${target}: filled by ${fill.length} pushes in ${fmt((performance.now() - t0) / 1000)} s\n`);
  const cpu0 = cpuSecondsOf(peer.pid);
  // The first scrape's body is read for its series; the timed ones are curl's.
  const text = await scrapeOnce(peer.url);
  const big = text.length > 20e6;
  const reps = big ? 1 : text.length > 5e6 ? 3 : 5;
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await curlScrapeMs(peer.url));
  const cpuMs = (1000 * (cpuSecondsOf(peer.pid) - cpu0)) / (reps + 1);
  // At 500k one render takes seconds: the push phases would only repeat that figure.
  const skip = { lat: [Number.NaN, Number.NaN, Number.NaN] as [number, number, number], scrapes: 0 };
  const idle = big ? skip : await pushPhase(peer.url, next);
  const busy = big ? skip : await pushPhase(peer.url, next, peer.url);
  return {
    series: label,
    target,
    seriesExposed: seriesCount(text),
    renderMs: quantile(times, 0.5),
    cpuMs,
    sizeMiB: text.length / 2 ** 20,
    scrapes: busy.scrapes,
    idle: idle.lat,
    underScrape: busy.lat,
    rssMiB: rssOf(peer.pid) / 2 ** 20,
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const pin = pinLoadGenerator();
  process.stdout.write(
    `bench:scrape — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}; ${pin}\n`,
  );
  const rows: Row[] = [];
  for (const size of SIZES) {
    const n = Math.ceil(size / 302);
    const ids = Array.from({ length: n }, (_, i) => probeId(i));
    const results = ids.map((_, i) => probeResults(i));
    const bodies = results.map((r, i) => batchBody(i, r));
    const texts = await Promise.all(results.map((r, i) => probeExposition(i, r)));
    const label = `${size / 1000}k`;
    process.stdout.write(`\n${label} series: ${n} probes × ~302 series\n`);
    const { post, put } = peerRequests(ids, bodies, texts, tokenFor);

    const collector = await startCollectorProcess({ probes: ids, dist: true });
    running.add(collector);
    rows.push(
      await measure(
        collector,
        label,
        'collector',
        ids.map((_, i) => post(i)),
        post,
      ),
    );
    await collector.stop();
    running.delete(collector);

    const pg = await startPushgateway({ disableConsistencyCheck: true });
    running.add(pg);
    rows.push(
      await measure(
        pg,
        label,
        'pushgateway',
        ids.map((_, i) => put(i)),
        put,
      ),
    );
    await pg.stop();
    running.delete(pg);

    const [c, p] = rows.slice(-2);
    if (c && p) {
      process.stdout.write(
        `${table(
          ['target', 'series', 'render ms', 'CPU ms/scrape', 'MiB', 'RSS MiB', 'push p50/p99/max ms idle', 'push p50/p99/max ms while scraping', 'scrapes'],
          [c, p].map((r) => [
            r.target,
            String(r.seriesExposed),
            fmt(r.renderMs, 0),
            fmt(r.cpuMs, 0),
            fmt(r.sizeMiB, 1),
            fmt(r.rssMiB, 0),
            r.idle.map((v) => fmt(v, 1)).join(' / '),
            r.underScrape.map((v) => fmt(v, 1)).join(' / '),
            String(r.scrapes),
          ]),
        )}\n`,
      );
      process.stdout.write(
        `ratio: collector render time = ${fmt(c.renderMs / p.renderMs, 2)}× Pushgateway's, CPU per scrape ${fmt(c.cpuMs / p.cpuMs, 2)}× (goal ≤ 0.5×); size ${fmt(c.sizeMiB / p.sizeMiB, 2)}×; RSS ${fmt(c.rssMiB / p.rssMiB, 2)}× (goal ≤ 1×);` +
          ` collector push p99 while scraping ${fmt(c.underScrape[1], 1)} ms (goal ≤ 20 ms) = ${fmt(c.underScrape[1] / c.idle[1], 1)}× its idle p99, max ${fmt(c.underScrape[2], 0)} ms (Pushgateway: ${fmt(p.underScrape[1] / p.idle[1], 1)}×, max ${fmt(p.underScrape[2], 0)} ms)\n`,
      );
    }
  }
  process.stdout.write(`\ndone in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:scrape failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
