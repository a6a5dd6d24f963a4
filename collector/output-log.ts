/**
 * What the operator needs to see in the collector's log about its outputs: at start, one line per
 * output saying where it writes (the /metrics endpoint, the remote-write URL with its replica label,
 * job and queue bound, the status page); while it runs, a warning when a remote write is configured
 * but its receiver has not accepted a request for a while (a wrong URL, a refusing or unreachable
 * receiver), and a line when it accepts again. The watch reads only the collector's own
 * remote-write metrics from the injected registry, so it knows nothing of the output's internals.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import type { PlanConfig } from '../config/schema.js';
import { METRICS } from '../protocol/metrics.js';

export interface OutputLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Where the remote write goes, as the output was built (the resolved replica, not the plan's optional one). */
export interface RemoteWriteTarget {
  url: string;
  job: string;
  instance: string;
  queueMaxSamples: number;
}

/** One line per output: where the collector's samples and pages go. */
export function logOutputs(log: OutputLog, plan: PlanConfig, rw: RemoteWriteTarget | undefined): void {
  const resultsOnMetrics = !rw || plan.collector.remote_write?.results_on_metrics !== false;
  log.info(
    { output: 'metrics', path: '/metrics', results: resultsOnMetrics },
    resultsOnMetrics
      ? 'output: results and the collector’s own metrics on GET /metrics'
      : 'output: the collector’s own metrics on GET /metrics (results only by remote write)',
  );
  if (rw) {
    log.info(
      { output: 'remote-write', url: rw.url, job: rw.job, replica: rw.instance, queueMaxSamples: rw.queueMaxSamples },
      `output: remote write to ${rw.url} as job="${rw.job}", instance="${rw.instance}" (queue ${rw.queueMaxSamples} samples)`,
    );
  }
  if (plan.collector.status.enabled) log.info({ output: 'status', path: '/' }, 'output: the status page on GET / and GET /v1/status');
}

/** Sums a labelled counter's values by label value. */
async function byResult(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = registry.getSingleMetric(name) as Counter<'result'> | Gauge<string> | undefined;
  const out: Record<string, number> = {};
  if (!m) return out;
  for (const v of (await m.get()).values) {
    const k = String(v.labels.result ?? '');
    out[k] = (out[k] ?? 0) + v.value;
  }
  return out;
}

export interface ReceiverWatchOptions {
  registry: Registry;
  log: OutputLog;
  url: string;
  /** Warn when no request was accepted for this long while samples wait or requests fail. Default 60 000 ms. */
  warnAfterMs?: number;
  /** How often to look. Default a quarter of warnAfterMs, at most 5 s. */
  checkEveryMs?: number;
  now?: () => number;
}

/**
 * Warns once when samples have waited (or requests failed) for `warnAfterMs` without the receiver
 * accepting a request; logs when it accepts again. An idle collector (nothing to send) stays quiet. Returns the function that stops the watch.
 */
export function watchReceiver(opts: ReceiverWatchOptions): () => void {
  const warnAfter = opts.warnAfterMs ?? 60_000;
  const now = opts.now ?? Date.now;
  /** Since when samples wait (or requests failed) without an accepted request; undefined while idle. */
  let since: number | undefined;
  let accepted = 0;
  let tried = 0;
  let warned = false;
  let busy = false;
  const check = async () => {
    const requests = await byResult(opts.registry, METRICS.collectorRemoteWriteRequests.name);
    const queueMetric = opts.registry.getSingleMetric(METRICS.collectorRemoteWriteQueue.name) as Gauge<string> | undefined;
    const queued = queueMetric ? ((await queueMetric.get()).values[0]?.value ?? 0) : 0;
    const ok = requests.success ?? 0;
    const failed = (requests.retried ?? 0) + (requests.rejected ?? 0);
    const t = now();
    if (ok > accepted) {
      if (warned) opts.log.info({ output: 'remote-write', url: opts.url }, `remote write: the receiver at ${opts.url} accepts requests again`);
      accepted = ok;
      tried = failed;
      since = undefined;
      warned = false;
    }
    if (queued === 0 && failed === tried) {
      since = undefined;
      return;
    }
    since ??= t;
    if (warned || t - since < warnAfter) return;
    warned = true;
    const seconds = Math.round((t - since) / 1000);
    const retried = requests.retried ?? 0;
    const rejected = requests.rejected ?? 0;
    opts.log.warn(
      { output: 'remote-write', url: opts.url, secondsWithoutAccept: seconds, queued, retried, rejected },
      `remote write: the receiver at ${opts.url} has not accepted a request for ${seconds} s (${retried} retried, ${rejected} rejected, ${queued} samples queued); check the URL, the receiver and the collector's network`,
    );
  };
  const timer = setInterval(
    () => {
      if (busy) return;
      busy = true;
      check()
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    },
    opts.checkEveryMs ?? Math.min(5000, Math.max(50, Math.floor(warnAfter / 4))),
  );
  timer.unref();
  return () => clearInterval(timer);
}
