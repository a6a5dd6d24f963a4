/**
 * Real VictoriaMetrics processes (Debian's `victoria-metrics` package: `victoria-metrics`,
 * `vmalert`) for tests and benchmarks, set up as docs/scaling-out.md tells a user to: the single
 * node receives remote write on /api/v1/write, scrapes the collector's own /metrics itself
 * (-promscrape.config), answers queries at once (-search.latencyOffset=0, no response cache);
 * vmalert evaluates the shipped rules against it and writes recording rules and alert state back
 * (-remoteWrite.url, -remoteRead.url). Each listens on 127.0.0.1 and keeps its data in a temporary
 * directory; `pause()`/`resume()` stop and restart the single node on the same port and data (a
 * receiver outage).
 *
 *   const vm = await startVictoriaMetrics({ scrape: [collectorHostPort] });
 *   // collector.remote_write.url = vm.writeUrl
 *   const alerts = await startVmalert({ url: vm.url, ruleTexts: { 'rules.yml': text } });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, stopChild } from './bench-processes.js';
import type { ActiveAlert, QueryData } from './prometheus.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  child: ChildProcess;
  log: () => string;
}

/** Starts `binary` until `url`/health answers 200 (both VictoriaMetrics and vmalert serve it). */
async function startProc(binary: string, args: string[], url: string, cwd: string): Promise<Proc> {
  let log = '';
  const child = spawn(binary, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: string) => {
    log = (log + d).slice(-8000);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  child.on('error', (e) => keep(`\n${binary}: ${e.message}`));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const r = await request(`${url}/health`);
      await r.body.dump();
      if (r.statusCode === 200) return { child, log: () => log };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`${binary} did not become ready:\n${log}`);
}

const stopProc = (p: Proc): Promise<void> => stopChild(p.child);

interface ApiReply<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

async function api<T>(url: string): Promise<T> {
  const r = await request(url);
  const text = await r.body.text();
  let body: ApiReply<T>;
  try {
    body = JSON.parse(text) as ApiReply<T>;
  } catch {
    throw new Error(`${url}: ${r.statusCode} ${text.slice(0, 300)}`);
  }
  if (body.status !== 'success') throw new Error(`${url}: ${body.errorType}: ${body.error}`);
  return body.data;
}

/** One series of /api/v1/export: raw samples as stored. */
export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  /** Unix ms. */
  timestamps: number[];
}

/**
 * The single node's query flag docs/scaling-out.md gives (test/deploy checks that the deploy
 * manifests carry it): a query without a `step` looks back 5 minutes for a series' newest sample,
 * as Prometheus does. It only caps what a query with a step looks back: see {@link VMALERT_QUERY_STEP}.
 */
export const VM_SEARCH_FLAGS = ['-search.maxLookback=5m'] as const;

/**
 * vmalert's `-datasource.queryStep` as docs/scaling-out.md gives it (vmalert's own default).
 * VictoriaMetrics looks back max(step, a guess of 1.125-5 sample intervals) for a series' newest
 * sample, capped by -search.maxLookback. A consensus gauge every probe writes has samples a
 * fraction of a check interval apart, so with the step at the evaluation interval it vanished from
 * vmalert's view a few seconds after its newest sample: after a store outage every pending `for:`
 * timer on it started again, and the alerts fired late (in CI, not within 20 s) where Prometheus
 * (5 minutes) had fired. With a 5-minute step it lasts 5 minutes,
 * as in Prometheus; the shipped rules' ranges are all 5 minutes or longer, so no rate changes.
 */
export const VMALERT_QUERY_STEP = '5m';

export interface VictoriaMetricsOptions {
  /** `host:port` targets whose /metrics the single node scrapes itself (job `mailprobe-collector`). Default none. */
  scrape?: readonly string[];
  /** Scrape interval. Default 1s. */
  scrapeInterval?: string;
  /** Path of the binary. Default `victoria-metrics`. */
  binary?: string;
}

export interface RunningVictoriaMetrics {
  /** Query API (Prometheus-compatible) and the base for -datasource.url. */
  url: string;
  /** The remote-write receiver: `<url>/api/v1/write`. */
  writeUrl: string;
  dir: string;
  query(expr: string, time?: number): Promise<QueryData>;
  /** Raw samples of the series matching `match` (a series selector). */
  exportSeries(match: string): Promise<ExportedSeries[]>;
  /** Stops the process (an outage); data and port stay. */
  pause(): Promise<void>;
  /** Starts it again on the same port and data. */
  resume(): Promise<void>;
  /** The process's recent output. */
  log(): string;
  stop(): Promise<void>;
}

export async function startVictoriaMetrics(opts: VictoriaMetricsOptions = {}): Promise<RunningVictoriaMetrics> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-vm-'));
  const binary = opts.binary ?? 'victoria-metrics';
  const scrape = opts.scrape ?? [];
  if (scrape.length > 0) {
    writeFileSync(
      join(dir, 'scrape.yml'),
      [
        'global:',
        `  scrape_interval: ${opts.scrapeInterval ?? '1s'}`,
        'scrape_configs:',
        '  - job_name: mailprobe-collector',
        '    static_configs:',
        `      - targets: ${JSON.stringify(scrape)}`,
        '',
      ].join('\n'),
    );
  }
  let port = 0;
  let proc: Proc | undefined;
  const args = () => [
    `-httpListenAddr=127.0.0.1:${port}`,
    `-storageDataPath=${join(dir, 'data')}`,
    '-retentionPeriod=1d',
    // Data is visible to queries at once (default: the newest 30 s are hidden), no cached answers.
    '-search.latencyOffset=0',
    '-search.disableCache',
    ...VM_SEARCH_FLAGS,
    '-loggerLevel=ERROR',
    ...(scrape.length > 0 ? [`-promscrape.config=${join(dir, 'scrape.yml')}`] : []),
  ];
  let url = '';
  for (let attempt = 0; attempt < 3 && !proc; attempt++) {
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    proc = await startProc(binary, args(), url, dir).catch((e: unknown) => {
      if (attempt === 2) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      return undefined;
    });
  }
  const killOnExit = () => proc?.child.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    url,
    writeUrl: `${url}/api/v1/write`,
    dir,
    async query(expr, time) {
      const qs = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
      return api<QueryData>(`${url}/api/v1/query?${qs}`);
    },
    async exportSeries(match) {
      const r = await request(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match })}`);
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`export ${match}: ${r.statusCode} ${text.slice(0, 300)}`);
      return (
        text
          .split('\n')
          .filter((l) => l.trim() !== '')
          // Stale markers come out as a bare NaN, which JSON does not have.
          .map((l) => {
            const s = JSON.parse(l.replace(/\bNaN\b/g, 'null')) as { metric: Record<string, string>; values: (number | null)[]; timestamps: number[] };
            return { ...s, values: s.values.map((v) => v ?? Number.NaN) };
          })
      );
    },
    async pause() {
      if (proc) await stopProc(proc);
      proc = undefined;
    },
    async resume() {
      if (!proc) proc = await startProc(binary, args(), url, dir);
    },
    log: () => proc?.log() ?? '',
    async stop() {
      process.removeListener('exit', killOnExit);
      if (proc) await stopProc(proc);
      proc = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface VmalertOptions {
  /** The single node (or vmselect/vminsert in a cluster): datasource, remote write and remote read. */
  url: string;
  /** Rule file name → its text. */
  ruleTexts: Readonly<Record<string, string>>;
  /** -evaluationInterval. Default 1s. */
  evaluationInterval?: string;
  /** -remoteWrite.flushInterval: how soon recorded series reach the store. Default 1s. */
  flushInterval?: string;
  binary?: string;
}

export interface RunningVmalert {
  url: string;
  alerts(): Promise<ActiveAlert[]>;
  ruleGroups(): Promise<
    {
      name: string;
      lastEvaluation: string;
      rules: { name: string; type: string; query: string; health: string; lastError: string; lastEvaluation: string; lastSamples: number; state?: string }[];
    }[]
  >;
  stop(): Promise<void>;
}

/** vmalert with the flags docs/scaling-out.md gives; alerts go nowhere (a closed port): the test reads its API. */
export async function startVmalert(opts: VmalertOptions): Promise<RunningVmalert> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-vmalert-'));
  for (const [name, text] of Object.entries(opts.ruleTexts)) writeFileSync(join(dir, name), text);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const unused = await freePort();
  let proc: Proc;
  try {
    proc = await startProc(
      opts.binary ?? 'vmalert',
      [
        ...Object.keys(opts.ruleTexts).map((n) => `-rule=${join(dir, n)}`),
        `-datasource.url=${opts.url}`,
        `-remoteWrite.url=${opts.url}`,
        `-remoteRead.url=${opts.url}`,
        `-remoteWrite.flushInterval=${opts.flushInterval ?? '1s'}`,
        `-evaluationInterval=${opts.evaluationInterval ?? '1s'}`,
        `-datasource.queryStep=${VMALERT_QUERY_STEP}`,
        `-notifier.url=http://127.0.0.1:${unused}`,
        `-httpListenAddr=127.0.0.1:${port}`,
        '-loggerLevel=ERROR',
      ],
      url,
      dir,
    );
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const killOnExit = () => proc.child.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    url,
    async alerts() {
      // vmalert answers `"alerts": null` while none is active.
      return (await api<{ alerts: ActiveAlert[] | null }>(`${url}/api/v1/alerts`)).alerts ?? [];
    },
    async ruleGroups() {
      return (await api<{ groups: Awaited<ReturnType<RunningVmalert['ruleGroups']>> | null }>(`${url}/api/v1/rules`)).groups ?? [];
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      await stopProc(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
