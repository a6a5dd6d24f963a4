/**
 * A real Prometheus (the Debian package's /usr/bin/prometheus) for the lab and the tests: listens on
 * 127.0.0.1:<free port>, keeps its config and TSDB in a temporary directory, scrapes the given
 * targets every second and evaluates the deploy/ rules every second.
 *
 *   const prom = await startPrometheus({ targets: [collectorHostPort] });
 *   await prom.waitForScrapes(2);
 *   const r = await prom.query('up');
 *   await prom.stop();
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { request } from 'undici';
import { parse } from 'yaml';
import { COLLECTOR_JOB } from '../protocol/metrics.js';
import { freePort } from './ports.js';

/** The checkout (or installed package) root: the first folder up that holds deploy/prometheus/rules (sources or dist/). */
function findRoot(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 4; i++) {
    dir = resolve(dir, '..');
    if (existsSync(join(dir, 'deploy/prometheus/rules'))) return dir;
  }
  return resolve(import.meta.dirname, '..');
}
const root = findRoot();

/** The rule files of deploy/prometheus/rules, recording rules first. */
export const DEPLOY_RULE_FILES: readonly string[] = readdirSync(join(root, 'deploy/prometheus/rules'))
  .filter((f) => f.endsWith('.yml'))
  .sort((a, b) => Number(b.includes('recording')) - Number(a.includes('recording')) || a.localeCompare(b))
  .map((f) => join(root, 'deploy/prometheus/rules', f));

export interface PrometheusOptions {
  /** `host:port` of each target (a collector's /metrics). */
  targets: readonly string[];
  /** Job name of the targets. Default `mailprobe-collector`, the job the collector alerts select. */
  job?: string;
  /** More scrape jobs: job name → `host:port` targets (e.g. probes' /metrics as `mailprobe-probe`). */
  moreJobs?: Readonly<Record<string, readonly string[]>>;
  /** Scrape and rule evaluation interval. Default `1s`. */
  interval?: string;
  /** Rule files to load. Default {@link DEPLOY_RULE_FILES}; `[]` loads none. */
  ruleFiles?: readonly string[];
  /** Rewrites each rule file's text before loading (e.g. {@link overrideFor} for compressed timelines). */
  ruleTransform?: (text: string, file: string) => string;
  /** `host:port` of Alertmanagers to send alerts to. Default none. */
  alertmanagers?: readonly string[];
  /** Path of the prometheus binary. Default `prometheus` from PATH. */
  binary?: string;
  /**
   * Load the rules only once every target has been scraped (at the latest after
   * {@link RULES_AT_THE_LATEST_MS}), as a Prometheus that has been running for a while has. A
   * fresh Prometheus hands its first targets to the scraper only after about 5 s (its discovery
   * updates are throttled), so before that `up` is absent; with `for:` compressed to seconds, a
   * rule over `up` (MailprobeCollectorsAllDown's absent()) would fire for a start that is
   * expected. Default false: the rules are loaded at start.
   */
  rulesAfterFirstScrape?: boolean;
}

/** With {@link PrometheusOptions.rulesAfterFirstScrape}: the rules are loaded by then even if a target is never up. */
export const RULES_AT_THE_LATEST_MS = 20_000;

/** One sample of an instant vector. */
export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export type QueryData =
  | { resultType: 'vector'; result: VectorSample[] }
  | { resultType: 'matrix'; result: { metric: Record<string, string>; values: [number, string][] }[] }
  | { resultType: 'scalar' | 'string'; result: [number, string] };

export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

/** A query Prometheus refused (parse error, bad data, timeout). */
export class PrometheusQueryError extends Error {
  constructor(
    readonly expr: string,
    readonly errorType: string,
    message: string,
  ) {
    super(`${errorType}: ${message} (in ${expr})`);
  }
}

export interface RunningPrometheus {
  url: string;
  dir: string;
  /** Evaluates an instant query now (or at `time`, Unix seconds); throws PrometheusQueryError. */
  query(expr: string, time?: number): Promise<QueryData>;
  /** The instant vector of `expr` (throws if the result is not a vector). */
  vector(expr: string): Promise<VectorSample[]>;
  /** Active (pending or firing) alerts. */
  alerts(): Promise<ActiveAlert[]>;
  /** Rule groups as /api/v1/rules reports them (health and lastError per rule). */
  ruleGroups(): Promise<{ name: string; rules: { name: string; type: string; health: string; lastError?: string; query: string }[] }[]>;
  /** Waits until every target has been scraped successfully `n` more times than now. */
  waitForScrapes(n?: number, timeoutMs?: number): Promise<void>;
  /** Waits until `check` returns true (polled every 200 ms). */
  waitFor(check: () => Promise<boolean>, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves once the rule groups are loaded (at start, or after the first scrapes with rulesAfterFirstScrape). */
  rulesLoaded: Promise<void>;
  stop(): Promise<void>;
}

/** Replaces the `for:` of every alert with `duration` (for compressed lab timelines). */
export function overrideFor(text: string, duration: string): string {
  return text.replace(/^(\s+)for: .*$/gm, `$1for: ${duration}`);
}

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** Seconds of a Prometheus duration such as `5m`, `1h30m`. */
export function durationSeconds(d: string): number {
  let total = 0;
  let rest = d;
  for (const m of d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) {
    total += Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
    rest = rest.replace(m[0], '');
  }
  if (rest !== '' || total === 0) throw new Error(`not a duration: ${d}`);
  return total;
}

/**
 * Runs the deploy rules on a timeline `factor` times faster (a lab cutover in minutes instead of
 * hours): divides every `for:`, every range selector (`[5m]` → `[5s]` at 60×) and every comparison
 * constant of 60 or more — in these rules those are durations in seconds (probe silent after 300 s,
 * certificate within 14 * 86400 s); 0/1 comparisons are flags and stay. Ranges stay at least
 * `minRangeSeconds` long (default 3 s, three scrapes at 1 s) so rate() has samples.
 */
export function compressRules(text: string, factor: number, minRangeSeconds = 3): string {
  const scaled = (seconds: number, min: number) => `${Math.max(min, Math.ceil(seconds / factor))}s`;
  return text
    .replace(/^(\s+)for: (\S+)$/gm, (_, indent: string, d: string) => `${indent}for: ${scaled(durationSeconds(d), 1)}`)
    .replace(/\[(\d+(?:ms|s|m|h|d|w|y))+\]/g, (whole) => `[${scaled(durationSeconds(whole.slice(1, -1)), minRangeSeconds)}]`)
    .replace(/([<>]=?|==) (\d+(?:\s*\*\s*\d+)*)(?![\d.*])/g, (whole, op: string, expr: string) => {
      const value = expr.split('*').reduce((a, b) => a * Number(b.trim()), 1);
      return value >= 60 ? `${op} ${Math.max(1, Math.round(value / factor))}` : whole;
    });
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const r = await request(url);
  const text = await r.body.text();
  return { status: r.statusCode, body: JSON.parse(text) as T };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once('exit', () => res());
  });
}

interface ApiReply<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-prom-'));
  const interval = opts.interval ?? '1s';
  const job = opts.job ?? COLLECTOR_JOB;
  const rules = (opts.ruleFiles ?? DEPLOY_RULE_FILES).map((f) => {
    const text = readFileSync(f, 'utf8');
    return { name: basename(f), text: opts.ruleTransform ? opts.ruleTransform(text, f) : text };
  });
  const writeRules = (empty: boolean) => {
    for (const r of rules) writeFileSync(join(dir, r.name), empty ? 'groups: []\n' : r.text);
  };
  writeRules(opts.rulesAfterFirstScrape === true);
  const files = rules.map((r) => r.name);
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    ...(opts.alertmanagers && opts.alertmanagers.length > 0
      ? ['alerting:', '  alertmanagers:', '    - static_configs:', `        - targets: ${JSON.stringify(opts.alertmanagers)}`]
      : []),
    'rule_files:',
    ...(files.length > 0 ? files.map((f) => `  - ${JSON.stringify(f)}`) : ['  []']),
    'scrape_configs:',
    ...[[job, opts.targets] as const, ...Object.entries(opts.moreJobs ?? {})].flatMap(([name, targets]) => [
      `  - job_name: ${JSON.stringify(name)}`,
      '    static_configs:',
      `      - targets: ${JSON.stringify(targets)}`,
    ]),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);

  const daemon = await startDaemon(opts.binary ?? 'prometheus', dir, (port) => [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ]);
  const { url } = daemon;

  async function api<T>(path: string): Promise<T> {
    const r = await getJson<ApiReply<T>>(`${url}${path}`);
    if (r.body.status !== 'success') throw new Error(`${path}: ${r.body.errorType}: ${r.body.error}`);
    return r.body.data;
  }

  async function query(expr: string, time?: number): Promise<QueryData> {
    const qs = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
    const r = await getJson<ApiReply<QueryData>>(`${url}/api/v1/query?${qs}`);
    if (r.body.status !== 'success') throw new PrometheusQueryError(expr, r.body.errorType ?? String(r.status), r.body.error ?? '');
    return r.body.data;
  }

  async function scrapes(): Promise<Map<string, string>> {
    const d = await api<{ activeTargets: { scrapeUrl: string; lastScrape: string; health: string }[] }>('/api/v1/targets?state=active');
    return new Map(d.activeTargets.map((t) => [t.scrapeUrl, t.health === 'up' ? t.lastScrape : '']));
  }

  async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`prometheus: timed out waiting for ${what}\n${daemon.log()}`);
      await sleep(200);
    }
  }

  const ruleGroupCount = async () => (await api<{ groups: unknown[] }>('/api/v1/rules')).groups.length;
  const wantedGroups = rules.reduce((n, r) => n + ((parse(r.text) as { groups?: unknown[] } | null)?.groups?.length ?? 0), 0);
  let rulesLoaded: Promise<void> = Promise.resolve();
  let stopped = false;
  if (opts.rulesAfterFirstScrape === true && wantedGroups > 0) {
    rulesLoaded = (async () => {
      const deadline = Date.now() + RULES_AT_THE_LATEST_MS;
      while (Date.now() < deadline) {
        if (stopped) throw new Error('prometheus stopped before its rules were loaded');
        const now = await scrapes().catch(() => new Map<string, string>());
        if (now.size > 0 && [...now.values()].every((last) => last !== '')) break;
        await sleep(200);
      }
      writeRules(false);
      daemon.child.kill('SIGHUP');
      await waitFor(async () => (await ruleGroupCount()) === wantedGroups, 15_000, 'the rules after a reload');
    })();
    // A Prometheus stopped before the reload: nothing to report to anyone.
    rulesLoaded.catch(() => {});
  }

  return {
    url,
    dir,
    rulesLoaded,
    query,
    async vector(expr) {
      const d = await query(expr);
      if (d.resultType !== 'vector') throw new Error(`${expr}: expected a vector, got ${d.resultType}`);
      return d.result;
    },
    async alerts() {
      return (await api<{ alerts: ActiveAlert[] }>('/api/v1/alerts')).alerts;
    },
    async ruleGroups() {
      return (await api<{ groups: Awaited<ReturnType<RunningPrometheus['ruleGroups']>> }>('/api/v1/rules')).groups;
    },
    async waitForScrapes(n = 2, timeoutMs = 15_000) {
      const seen = new Map<string, Set<string>>();
      await waitFor(
        async () => {
          const now = await scrapes();
          for (const [target, last] of now) {
            if (!seen.has(target)) seen.set(target, new Set());
            if (last) seen.get(target)?.add(last);
          }
          // The first observed lastScrape may predate the call: need n newer ones.
          return now.size > 0 && [...seen.values()].every((s) => s.size > n);
        },
        timeoutMs,
        `${n} scrapes of every target`,
      );
    },
    waitFor,
    stop: () => {
      stopped = true;
      return daemon.stop();
    },
  };
}

interface Daemon {
  url: string;
  child: ChildProcess;
  log(): string;
  /** SIGTERM, SIGKILL after 5 s, then removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Starts `binary` with the args for a free port until `/-/ready` answers 200 (Prometheus and
 * Alertmanager both have it). Another process may take the port between our probe and the daemon
 * binding it: up to three attempts.
 */
async function startDaemon(binary: string, dir: string, args: (port: number) => string[]): Promise<Daemon> {
  let log = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const c = spawn(binary, args(port), { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.setEncoding('utf8').on('data', (d: string) => {
      log = (log + d).slice(-8000);
    });
    c.on('error', (e) => {
      log += `\n${binary}: ${e.message}`;
    });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    let ready = false;
    while (!ready && Date.now() < deadline && c.exitCode === null && c.pid !== undefined) {
      try {
        const r = await request(`${url}/-/ready`);
        await r.body.dump();
        ready = r.statusCode === 200;
      } catch {
        // not listening yet
      }
      if (!ready) await sleep(100);
    }
    if (!ready) {
      c.kill('SIGKILL');
      if (c.pid !== undefined) await exited(c);
      continue;
    }
    // A test runner that dies or times out must not leave the daemon behind.
    const killOnExit = () => c.kill('SIGKILL');
    process.once('exit', killOnExit);
    return {
      url,
      child: c,
      log: () => log,
      async stop() {
        process.removeListener('exit', killOnExit);
        if (c.exitCode === null && c.signalCode === null) {
          c.kill('SIGTERM');
          const t = setTimeout(() => c.kill('SIGKILL'), 5000);
          await exited(c);
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${binary} did not become ready:\n${log}`);
}

export interface RunningAlertmanager {
  url: string;
  /** `host:port`, for {@link PrometheusOptions.alertmanagers}. */
  address: string;
  dir: string;
  stop(): Promise<void>;
}

/**
 * A real Alertmanager (Debian's /usr/bin/prometheus-alertmanager) on 127.0.0.1:<free port> with
 * the given config text, clustering off.
 */
export async function startAlertmanager(config: string, binary = 'prometheus-alertmanager'): Promise<RunningAlertmanager> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-am-'));
  writeFileSync(join(dir, 'alertmanager.yml'), config);
  const d = await startDaemon(binary, dir, (port) => [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--cluster.listen-address=',
    '--log.level=warn',
  ]);
  return { url: d.url, address: new URL(d.url).host, dir, stop: () => d.stop() };
}
