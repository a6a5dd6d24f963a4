/**
 * Fleet load generator (issue 7): simulates N probes (default 500), each in its region with 20
 * resolvers × 3 record types, 2 server IPs, checking every 15 s and pushing a batch every 5 s,
 * against collector replicas on loopback, in real time for a bounded number of seconds.
 *
 *   npm run bench:fleet -- [--probes 500] [--seconds 45] [--scenarios one,ha,lb,rw] [--url URL | --receiver vm|prometheus]
 *
 * Scenarios: `one` (1 replica, /metrics, scraped every interval as Prometheus would), `ha`
 * (2 replicas, every batch to both, as probes do with two collectors listed), `lb` (2 replicas,
 * each probe sticky to one, as behind a load balancer); `rw`, `rw-ha`, `rw-lb` the same with
 * remote write (results only by remote write, results_on_metrics: false) to `--url` (an external
 * receiver: VictoriaMetrics, Mimir, Thanos Receive, Prometheus), else to a VictoriaMetrics single node
 * it starts when Debian's `victoria-metrics` is installed, else to a Prometheus with the receiver on
 * (`--receiver` picks one of the two). Per replica it prints accepted results/s, sample operations/s (what
 * the outputs apply), remote-write samples/s, push latency p50/p99, failed pushes, CPU and RSS,
 * the /metrics size and scrape time, then a paper estimate for 10 000 probes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { hashToken } from '../../collector/plugins/auth.js';
import { resultOps } from '../../collector/samples.js';
import type { CheckResult } from '../../protocol/results.js';
import { RESULTS_PATH, type Batch } from '../../protocol/wire.js';
import { probeCycle, type SimProbe } from './results.js';

const root = resolve(import.meta.dirname, '../..');

const { values: args } = parseArgs({
  options: {
    probes: { type: 'string', default: '500' },
    resolvers: { type: 'string', default: '20' },
    interval: { type: 'string', default: '15' },
    batches: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '45' },
    warmup: { type: 'string', default: '15' },
    regions: { type: 'string', default: '10' },
    scenarios: { type: 'string', default: 'rw,rw-lb,rw-ha,one,lb,ha' },
    connections: { type: 'string', default: '32' },
    'max-pushes': { type: 'string', default: '200000' },
    url: { type: 'string' },
    receiver: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (args.help) {
  process.stdout.write(`usage: npm run bench:fleet -- [options]

  --probes N          simulated probes (default 500)
  --resolvers N       resolvers per probe, x A/AAAA/MX (default 20)
  --interval S        check interval in seconds (default 15)
  --batches N         pushes per interval (default 3)
  --seconds S         measured seconds per scenario (default 45, at most 600)
  --warmup S          seconds of load before measuring (default 15)
  --regions N         regions (default 10)
  --scenarios LIST    of one, ha, lb, rw, rw-ha, rw-lb (default rw,rw-lb,rw-ha,one,lb,ha)
  --url URL           remote-write receiver for the rw scenarios (e.g. http://vm:8428/api/v1/write);
                      default: a VictoriaMetrics it starts when installed, else a Prometheus
  --receiver NAME     vm or prometheus: which one to start when --url is not given
  --connections N     HTTP connections per replica (default 32)
  --max-pushes N      stop after this many pushes (default 200000)
`);
  process.exit(0);
}

const PROBES = Number(args.probes);
const RESOLVERS = Number(args.resolvers);
const INTERVAL_S = Number(args.interval);
const BATCHES = Number(args.batches);
const SECONDS = Math.min(Number(args.seconds), 600);
const MAX_PUSHES = Number(args['max-pushes']);
/** Seconds of load before measuring: every series exists and the JIT is warm. */
const WARMUP = Math.min(Number(args.warmup), 120);

const probes: SimProbe[] = Array.from({ length: PROBES }, (_, i) => ({
  id: `bench-${String(i).padStart(5, '0')}`,
  region: `region-${i % Number(args.regions)}`,
  resolvers: Array.from({ length: RESOLVERS }, (_, r) => `10.${i % Number(args.regions)}.${Math.floor(r / 250)}.${(r % 250) + 1}`),
}));
const token = (id: string) => `bench-token-${id}`;

function planInput(remoteWriteUrl: string | undefined, replicaIndex: number): object {
  const now = Date.now();
  return {
    cutover: {
      domain: 'company.test',
      mail_host: 'mail.company.test',
      servers: [
        { ip: '127.0.0.2', side: 'old' },
        { ip: '127.0.0.3', side: 'new' },
      ],
      window: { start: new Date(now - 3_600_000).toISOString(), end: new Date(now + 3_600_000).toISOString() },
    },
    probes: {},
    collector: {
      listen: '127.0.0.1:0',
      tokens: Object.fromEntries(probes.map((p) => [p.id, hashToken(token(p.id))])),
      // Remote write as a large fleet runs it: results only by remote write, /metrics for the replica itself.
      ...(remoteWriteUrl ? { remote_write: { url: remoteWriteUrl, replica: `bench-rw-${replicaIndex}`, results_on_metrics: false } } : {}),
    },
  };
}

interface Replica {
  child: ChildProcess;
  url: string;
  pool: Pool;
  pid: number;
  /** RSS right after start (no series). */
  rssIdle: number;
  rssStart: number;
  rssPeak: number;
  cpuStart: number;
  latencies: number[];
  /** Durations of the periodic scrapes of /metrics (ms). */
  scrapes: number[];
  scrapeFailures: number;
  pushes: number;
  failed: number;
  results: number;
  ops: number;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

async function startReplica(remoteWriteUrl: string | undefined, replicaIndex: number): Promise<Replica> {
  // MAILPROBE_BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the replicas.
  const nodeArgs = (process.env.MAILPROBE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', resolve(root, 'bench/fleet/collector-process.ts')], {
    cwd: root,
    env: { ...process.env, MAILPROBE_BENCH_PLAN: JSON.stringify(planInput(remoteWriteUrl, replicaIndex)) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /LISTEN (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.once('exit', (code) => rej(new Error(`collector exited ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid ?? 0;
  return {
    child,
    url,
    pool: new Pool(url, { connections: Number(args.connections) }),
    pid,
    rssIdle: rssBytes(pid),
    rssStart: rssBytes(pid),
    rssPeak: 0,
    cpuStart: cpuSeconds(pid),
    latencies: [],
    scrapes: [],
    scrapeFailures: 0,
    pushes: 0,
    failed: 0,
    results: 0,
    ops: 0,
  };
}

async function stopReplica(r: Replica): Promise<void> {
  await r.pool.close();
  if (r.child.exitCode !== null) return;
  const exited = new Promise<void>((res) => r.child.once('exit', () => res()));
  r.child.kill('SIGTERM');
  const t = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

async function push(r: Replica, probe: SimProbe, body: string, results: number, ops: number): Promise<void> {
  const started = process.hrtime.bigint();
  try {
    const res = await r.pool.request({
      path: RESULTS_PATH,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token(probe.id)}` },
      body,
    });
    await res.body.dump();
    if (res.statusCode !== 200) r.failed++;
    else {
      r.results += results;
      r.ops += ops;
    }
  } catch {
    r.failed++;
  }
  r.pushes++;
  r.latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
}

const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

/** Sends the fleet's batches on their real-time schedule for SECONDS; `targets(i)` picks replicas. */
async function runLoad(replicas: Replica[], targets: (probeIndex: number) => Replica[]): Promise<{ seconds: number; late: number }> {
  const slot = (INTERVAL_S * 1000) / BATCHES;
  const started = Date.now();
  const end = started + (WARMUP + SECONDS) * 1000;
  let measuring = WARMUP === 0;
  let measureStart = started;
  const warm = setTimeout(() => {
    // Measurement starts now: reset what was counted during the warm-up.
    for (const r of replicas) {
      r.cpuStart = cpuSeconds(r.pid);
      r.rssStart = rssBytes(r.pid);
      r.rssPeak = r.rssStart;
      r.latencies = [];
      r.scrapes = [];
      r.scrapeFailures = 0;
      r.results = 0;
      r.ops = 0;
      r.pushes = 0;
      r.failed = 0;
    }
    measuring = true;
    measureStart = Date.now();
  }, WARMUP * 1000);
  const inflight = new Set<Promise<void>>();
  let sent = 0;
  let late = 0;
  const cycles = new Map<number, CheckResult[]>();
  // Prometheus scrapes each replica every interval, as in production: the scrape competes with pushes.
  const scraper = setInterval(() => {
    for (const r of replicas) {
      const t0 = process.hrtime.bigint();
      void r.pool
        .request({ path: '/metrics', method: 'GET' })
        .then((res) => res.body.dump())
        .then(() => {
          if (measuring) r.scrapes.push(Number(process.hrtime.bigint() - t0) / 1e6);
        })
        .catch(() => {
          if (measuring) r.scrapeFailures++;
        });
    }
  }, INTERVAL_S * 1000);
  const sampler = setInterval(() => {
    if (measuring) for (const r of replicas) r.rssPeak = Math.max(r.rssPeak, rssBytes(r.pid));
  }, 1000);
  // Events: probe i's k-th batch at started + offset_i + k * slot; offsets spread the fleet.
  for (let k = 0; ; k++) {
    const slotStart = started + k * slot;
    if (slotStart >= end || sent >= MAX_PUSHES) break;
    for (let i = 0; i < probes.length; i++) {
      const due = slotStart + (i / probes.length) * slot;
      if (due >= end) break;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((res) => setTimeout(res, wait));
      else if (wait < -250 && measuring) late++;
      const p = probes[i] as SimProbe;
      const cycle = Math.floor(k / BATCHES);
      // A cycle's results, split in BATCHES parts (the batch_max_age pushes within one interval).
      const key = i;
      let all = cycles.get(key);
      if (k % BATCHES === 0 || !all) {
        all = probeCycle(p, i, cycle, Date.now());
        cycles.set(key, all);
      }
      const part = Math.ceil(all.length / BATCHES);
      const results = all.slice((k % BATCHES) * part, ((k % BATCHES) + 1) * part);
      const batch: Batch = { probe: { id: p.id, region: p.region, version: 'bench' }, batch: { id: `${p.id}-${k}`, seq: k, createdAt: Date.now() }, results };
      const body = JSON.stringify(batch);
      const ops = results.reduce((n, r) => n + resultOps(p, r).length, 0);
      for (const r of targets(i)) {
        const pr = push(r, p, body, results.length, ops).finally(() => inflight.delete(pr));
        inflight.add(pr);
      }
      sent++;
    }
  }
  await Promise.all(inflight);
  clearInterval(sampler);
  clearInterval(scraper);
  clearTimeout(warm);
  if (!measuring) throw new Error('the run ended before the warm-up did');
  for (const r of replicas) r.rssPeak = Math.max(r.rssPeak, rssBytes(r.pid));
  return { seconds: (Date.now() - measureStart) / 1000, late };
}

async function scrape(r: Replica): Promise<{ ms: number; bytes: number; lines: number; rwSent: number; rwDropped: number }> {
  const started = process.hrtime.bigint();
  let text: string;
  try {
    const res = await r.pool.request({ path: '/metrics', method: 'GET' });
    text = await res.body.text();
  } catch (err) {
    // A scrape slower than the collector's request timeout is cut off: report it, do not crash.
    process.stderr.write(`# scrape of ${r.url} failed after ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(0)} ms: ${(err as Error).message}\n`);
    return { ms: Number.NaN, bytes: Number.NaN, lines: Number.NaN, rwSent: Number.NaN, rwDropped: Number.NaN };
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    ms,
    bytes: Buffer.byteLength(text),
    lines: text.split('\n').filter((l) => l && !l.startsWith('#')).length,
    rwSent: value(/^mailprobe_collector_remote_write_samples_total\{result="sent"\} (\S+)$/m),
    rwDropped: value(/^mailprobe_collector_remote_write_dropped_samples_total\{[^}]*\} (\S+)$/m),
  };
}

interface Row {
  scenario: string;
  replica: number;
  resultsPerS: number;
  opsPerS: number;
  rwPerS: number;
  p50: number;
  p99: number;
  failed: number;
  cpu: number;
  rssIdleMiB: number;
  rssPeakMiB: number;
  metricsMiB: number;
  metricsLines: number;
  scrapeMs: number;
  scrapeMaxMs: number;
  scrapeFailures: number;
}

/** The receiver the rw scenarios write to: `--url`, else VictoriaMetrics when installed, else Prometheus. */
function receiverKind(): 'url' | 'vm' | 'prometheus' | undefined {
  if (args.url) return 'url';
  const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
  if (args.receiver !== undefined && args.receiver !== 'vm' && args.receiver !== 'prometheus')
    throw new Error(`--receiver: must be vm or prometheus, not ${args.receiver}`);
  if (args.receiver !== 'prometheus' && has('victoria-metrics')) return 'vm';
  if (args.receiver !== 'vm' && has('prometheus')) return 'prometheus';
  return undefined;
}

async function startReceiver(): Promise<{ stop(): Promise<void>; writeUrl: string }> {
  const kind = receiverKind();
  if (kind === 'url') return { writeUrl: args.url as string, stop: async () => {} };
  if (kind === 'vm') {
    const { startVictoriaMetrics } = await import('../lib/victoria-metrics.js');
    return startVictoriaMetrics();
  }
  const { startRemoteWritePrometheus } = await import('../lib/prometheus-rw.js');
  return startRemoteWritePrometheus({ ruleFiles: [] });
}

async function scenario(name: string): Promise<Row[]> {
  const prom = name.startsWith('rw') ? await startReceiver() : undefined;
  const mode = name.replace(/^rw-?/, '') || 'one';
  const n = mode === 'one' ? 1 : 2;
  const replicas = await Promise.all(Array.from({ length: n }, (_, i) => startReplica(prom?.writeUrl, i)));
  try {
    const targets = mode === 'ha' ? () => replicas : mode === 'lb' ? (i: number) => [replicas[i % 2] as Replica] : () => [replicas[0] as Replica];
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const { seconds, late } = await runLoad(replicas, targets);
    const gen = process.cpuUsage(cpu0);
    process.stderr.write(`# ${name}: the generator used ${((gen.user + gen.system) / 1e3 / (Date.now() - t0)).toFixed(2)} cores\n`);
    if (late > 0) process.stderr.write(`# ${name}: ${late} pushes left more than 250 ms late (the generator could not keep up)\n`);
    // Let remote write drain before reading its counters.
    if (prom) await new Promise((r) => setTimeout(r, 3000));
    const rows: Row[] = [];
    for (const [i, r] of replicas.entries()) {
      const cpu = (cpuSeconds(r.pid) - r.cpuStart) / seconds;
      const s = await scrape(r);
      rows.push({
        scenario: name,
        replica: i,
        resultsPerS: r.results / seconds,
        opsPerS: r.ops / seconds,
        rwPerS: Number.isNaN(s.rwSent) ? Number.NaN : s.rwSent / seconds,
        p50: quantile(r.latencies, 0.5),
        p99: quantile(r.latencies, 0.99),
        failed: r.failed,
        cpu,
        rssIdleMiB: r.rssIdle / 2 ** 20,
        rssPeakMiB: r.rssPeak / 2 ** 20,
        metricsMiB: s.bytes / 2 ** 20,
        metricsLines: s.lines,
        scrapeMs: s.ms,
        scrapeMaxMs: Math.max(Number.isNaN(s.ms) ? 0 : s.ms, ...r.scrapes),
        scrapeFailures: r.scrapeFailures + (Number.isNaN(s.ms) ? 1 : 0),
      });
      if (s.rwDropped > 0) process.stderr.write(`# ${name}: replica ${i} dropped ${s.rwDropped} remote-write samples\n`);
    }
    return rows;
  } finally {
    await Promise.all(replicas.map(stopReplica));
    await prom?.stop();
  }
}

const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '-');

async function main(): Promise<void> {
  const scenarios = (args.scenarios ?? '').split(',').filter(Boolean);
  const receiver = receiverKind();
  const receiverName = { url: args.url, vm: 'a VictoriaMetrics single node (victoria-metrics)', prometheus: 'a Prometheus with the remote-write receiver' };
  console.log(
    `# fleet: ${PROBES} probes, ${RESOLVERS} resolvers x 3 types, 2 IPs, every ${INTERVAL_S}s, ${BATCHES} pushes per interval, ${WARMUP}s warm-up then ${SECONDS}s measured per scenario; node ${process.version}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  if (scenarios.some((s) => s.startsWith('rw'))) console.log(`# remote write to ${receiver ? receiverName[receiver] : 'nothing'}`);
  const rows: Row[] = [];
  for (const s of scenarios) {
    if (s.startsWith('rw') && !receiver) {
      console.log(`# ${s}: skipped, no --url and neither victoria-metrics nor prometheus on PATH`);
      continue;
    }
    rows.push(...(await scenario(s)));
  }
  console.log(
    '\nscenario replica results/s sample-ops/s rw-samples/s push-p50-ms push-p99-ms failed cpu-cores rss-idle-MiB rss-peak-MiB metrics-MiB metrics-series scrape-ms scrape-max-ms scrapes-failed',
  );
  for (const r of rows) {
    console.log(
      [
        r.scenario,
        r.replica,
        fmt(r.resultsPerS),
        fmt(r.opsPerS),
        fmt(r.rwPerS),
        fmt(r.p50, 1),
        fmt(r.p99, 1),
        r.failed,
        fmt(r.cpu, 2),
        fmt(r.rssIdleMiB),
        fmt(r.rssPeakMiB),
        fmt(r.metricsMiB, 1),
        r.metricsLines,
        fmt(r.scrapeMs),
        fmt(r.scrapeMaxMs),
        r.scrapeFailures,
      ].join(' '),
    );
  }

  const one = rows.find((r) => r.scenario === 'one');
  const rw = rows.find((r) => r.scenario === 'rw');
  const target = 10_000;
  console.log(`\n# paper estimate for ${target} probes (linear in probes, from the single-replica runs above):`);
  // A replica is one Node.js event loop: plan for half a core busy and 1 GiB of memory each.
  if (rw) {
    const cpu = rw.cpu / PROBES;
    const mib = (rw.rssPeakMiB - rw.rssIdleMiB) / PROBES;
    const byCpu = Math.ceil((target * cpu) / 0.5);
    const byMem = Math.ceil((target * mib) / 1024);
    const n = Math.max(byCpu, byMem, 1);
    const saturated = rw.p99 > 1000 ? ' (the replica was saturated: p99 above 1 s, so these per-probe costs are a lower bound)' : '';
    console.log(
      `#   remote write: ${fmt(cpu * 1000, 2)} mCPU and ${fmt(mib, 2)} MiB per probe${saturated}; ${target} probes need ${fmt(target * cpu, 1)} cores and ${fmt((target * mib) / 1024, 1)} GiB:`,
    );
    console.log(
      `#   ${byCpu} replicas by CPU, ${byMem} by memory: ${n} load-balanced replicas (sticky per probe) plus one spare = ${n + 1}; as an HA set (every batch to two sets) ${2 * n}`,
    );
    console.log(`#   the receiver takes ${fmt((rw.rwPerS * target) / PROBES)} samples/s`);
  }
  if (one) {
    const scrapeMs = Number.isFinite(one.scrapeMs) ? one.scrapeMs : one.scrapeMaxMs;
    const perProbe = scrapeMs / PROBES;
    const fits = Math.floor(5000 / perProbe);
    console.log(
      `#   /metrics: ${fmt(one.metricsLines / PROBES)} series per probe, a scrape costs ${fmt(perProbe, 1)} ms per probe${Number.isFinite(one.scrapeMs) ? '' : ' (at least: the last scrape failed)'}; keeping a scrape under 5 s holds ~${fits} probes per replica,`,
    );
    console.log(
      `#   so ${target} probes would need ~${Math.ceil(target / Math.max(1, fits))} scraped replicas (each scraped by Prometheus): use remote write at this scale`,
    );
  }
}

await main();
