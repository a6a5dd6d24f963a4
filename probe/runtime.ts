/**
 * The probe runtime: scheduler → batcher → spool → pusher, plus the health endpoint.
 * `createProbe` runs a probe in-process (the CLI, the lab and tests use it).
 *
 * Results are journaled to the spool as they arrive and sealed into a batch when the batch
 * holds plan.probes.push.batch_max_results results (or BATCH_MAX_BYTES), or when its oldest
 * result is batch_max_age old. A sealed batch is on disk before its first push.
 */
import { join } from 'node:path';
import { createProbeLog, type Log as Logger } from './log.js';
import { VERSION } from '../protocol/version.js';
import type { PlanConfig } from '../config/schema.js';
import type { CheckResult, CheckType } from '../protocol/results.js';
import { loadChecks, type CheckRegistry } from './checks/index.js';
import { PROBE_ERRORS } from './errors.js';
import { DecisionLog } from './decisions.js';
import { degradedReasons, startHealthServer, type HealthServer } from './health.js';
import { Pusher } from './pusher.js';
import { ABORT_GRACE_MS, Scheduler } from './scheduler.js';
import { createProbeMetrics, SelfMetricsRegistry, type ProbeMetrics } from './self-metrics.js';
import { Spool, type SpoolStats } from './spool.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { randomBytes } = process.getBuiltinModule('node:crypto');

/** A batch is sealed at this many bytes of results, well under the collector's default 1MiB body limit. */
export const BATCH_MAX_BYTES = 512 * 1024;
/** How long stop() keeps pushing the spool before it gives up (the rest stays spooled). */
export const STOP_FLUSH_MS = 5000;

export interface ProbeOptions {
  plan: PlanConfig;
  id: string;
  region: string;
  /** Bearer token for the collectors. */
  token?: string;
  /** Check type → spec (default: those of `checks` from probe/checks/index.ts, loaded at start). */
  registry?: CheckRegistry;
  /** Only these check types (default: every one in the registry). */
  checks?: readonly CheckType[];
  /** Wall clock in Unix ms, for results and scheduling (default Date.now); timers still wake at least every second. */
  now?: () => number;
  /** Default: JSON lines on stderr at info. */
  logger?: Logger;
  /** Default plan.probes.push.spool_dir, else .mailprobe-spool/<id>. */
  spoolDir?: string;
  /** Registry for the probe's own metrics (default: a new one; never the global one). */
  metricsRegistry?: SelfMetricsRegistry;
  /** Health/metrics listen address; default plan.probes.health_listen (off when absent). */
  healthListen?: string;
  random?: () => number;
  version?: string;
}

export interface ProbeStats {
  spool: SpoolStats;
  checksInFlight: number;
  /** Results handed to the spool since start. */
  results: number;
  /** Batches sealed since start. */
  batches: number;
}

export interface Probe {
  readonly id: string;
  readonly region: string;
  readonly spoolDir: string;
  readonly metrics: SelfMetricsRegistry;
  /** `http://host:port` of /healthz and /metrics once started, if enabled. */
  readonly healthUrl: string | undefined;
  /** Opens the spool (replaying what an earlier run left), starts pushing, scheduling and the health endpoint. */
  start(): Promise<void>;
  /** Seals the open results and pushes until the spool is empty or `ms` passed; true if empty. */
  flush(ms?: number): Promise<boolean>;
  /** Stops scheduling, waits for running checks (bounded), flushes what it can, closes everything. */
  stop(opts?: { graceMs?: number; flushMs?: number }): Promise<void>;
  stats(): ProbeStats;
  /** Runs started per check type/target (from the scheduler). */
  runs(): Record<string, number>;
  /** Spools results measured outside the scheduler (a log follower's last interval at the end of its input). */
  record(results: CheckResult[]): void;
}

export function newBatchId(): string {
  return randomBytes(18).toString('base64url');
}

export function createProbe(o: ProbeOptions): Probe {
  const { plan, id, region } = o;
  const push = plan.probes.push;
  const now = o.now ?? Date.now;
  const base = o.logger ?? createProbeLog('probe', 'info');
  // Keys the caller's logger already binds are not bound again (pino would write them twice).
  const bound = base.bindings();
  const log = base.child({ ...(bound.probe === undefined ? { probe: id } : {}), ...(bound.region === undefined ? { region } : {}) });
  const spoolDir = o.spoolDir ?? push.spool_dir ?? join('.mailprobe-spool', id);
  const registry = o.metricsRegistry ?? new SelfMetricsRegistry();
  const healthListen = o.healthListen ?? plan.probes.health_listen;
  const decisions = new DecisionLog(log);
  /** No collector took a batch for this long while batches wait → degraded. */
  const degradedAfterMs = push.degraded_after ?? 3 * push.retry_max;

  let spool: Spool | undefined;
  let pusher: Pusher | undefined;
  let scheduler: Scheduler | undefined;
  let health: HealthServer | undefined;
  let ageTimer: NodeJS.Timeout | undefined;
  let state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  let resultsTotal = 0;
  let batchesTotal = 0;
  const metrics: ProbeMetrics = createProbeMetrics(registry, { id, region }, () => spool?.stats());

  /** Seals open results into batches of at most batch_max_results (all of them with `all`). */
  const seal = (all = true): void => {
    if (!spool) return;
    while (spool.openCount > 0 && (all || spool.openCount >= push.batch_max_results || spool.openBytes >= BATCH_MAX_BYTES)) {
      let b: ReturnType<typeof spool.seal>;
      try {
        b = spool.seal(newBatchId(), now(), push.batch_max_results);
      } catch (err) {
        // A full disk or a vanished directory: the results stay open in memory and the next seal tries again.
        log.error(
          { code: 'spool_write_failed', err, dir: spoolDir },
          `${PROBE_ERRORS.spool_write_failed.message}; the results stay open and the next seal tries again`,
        );
        break;
      }
      if (!b) break;
      batchesTotal++;
      log.debug({ batch: b.id, seq: b.seq, results: b.count }, 'batch sealed');
    }
    // Left-over results keep the age timer their first result started.
    if (spool.openCount === 0 && ageTimer) {
      clearTimeout(ageTimer);
      ageTimer = undefined;
    }
    pusher?.notify();
  };

  const onResults = (results: CheckResult[]): void => {
    if (!spool || state === 'stopped') {
      log.warn({ results: results.length }, 'results arrived after the probe stopped; not spooled');
      return;
    }
    // One write for the whole run first: a crash while a batch is being sealed loses none of them.
    try {
      spool.appendResults(results);
    } catch (err) {
      log.error(
        { code: 'spool_write_failed', err, dir: spoolDir, lostResults: results.length },
        `${PROBE_ERRORS.spool_write_failed.message}; the results of this run are lost`,
      );
      return;
    }
    resultsTotal += results.length;
    decisions.observe(results);
    if (spool.openCount >= push.batch_max_results || spool.openBytes >= BATCH_MAX_BYTES) seal(false);
    if (spool.openCount > 0 && !ageTimer) {
      ageTimer = setTimeout(() => {
        ageTimer = undefined;
        seal();
      }, push.batch_max_age);
      ageTimer.unref?.();
    }
  };

  const probe: Probe = {
    id,
    region,
    spoolDir,
    metrics: registry,
    get healthUrl() {
      return health?.url;
    },

    async start() {
      if (state !== 'new') throw new Error(`probe ${id} was already started`);
      // Only the modules of the check types this probe runs, before the first round.
      const checks = o.registry ?? (await loadChecks(o.checks));
      try {
        spool = Spool.open({
          dir: spoolDir,
          maxBytes: push.spool_max_bytes,
          collectors: push.collectors,
          log,
          onDrop: (n) => metrics.spoolDropped.inc({ region, probe: id }, n),
        });
      } catch (err) {
        state = 'stopped';
        throw err;
      }
      if (healthListen) {
        try {
          health = await startHealthServer(healthListen, registry, () => {
            const spooled = spool?.stats();
            const stalledMs = pusher?.stalledMs();
            const reasons =
              state === 'running'
                ? degradedReasons({
                    stalledMs,
                    degradedAfterMs,
                    spoolBytes: spooled?.bytes ?? 0,
                    spoolMaxBytes: push.spool_max_bytes,
                    internal: decisions.failing('internal'),
                  })
                : [];
            return {
              ok: state === 'running' && reasons.length === 0,
              probe: id,
              region,
              state,
              degraded: reasons.length > 0,
              reasons,
              checks: scheduler?.types ?? [],
              inFlight: scheduler?.inFlight ?? 0,
              spool: spooled,
              pushing: pusher?.idle() === false,
              ...(stalledMs !== undefined ? { pushWaitingSeconds: Math.round(stalledMs / 1000) } : {}),
            };
          });
        } catch (err) {
          spool.close();
          state = 'stopped';
          throw new Error(`the health endpoint cannot listen on ${healthListen}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      state = 'running';
      // Results an earlier run journaled but never sealed go out first, as their own batch.
      seal();
      if (push.collectors.length === 0) log.warn('no collectors in probes.push.collectors: results are only spooled');
      pusher = new Pusher({
        spool,
        collectors: push.collectors,
        token: o.token ?? '',
        tokenEnv: push.token_env,
        probe: { id, region, version: o.version ?? VERSION },
        retryMinMs: push.retry_min,
        retryMaxMs: push.retry_max,
        requestTimeoutMs: push.request_timeout,
        log,
        metrics,
        ...(o.random ? { random: o.random } : {}),
      });
      pusher.start();
      scheduler = new Scheduler({
        plan,
        registry: checks,
        ...(o.checks ? { types: o.checks } : {}),
        probe: { id, region },
        log,
        now,
        onResults,
        metrics,
        ...(o.random ? { random: o.random } : {}),
      });
      scheduler.start();
      log.info({ checks: scheduler.types, collectors: push.collectors, spool: spoolDir, health: health?.url, spooled: spool.stats() }, 'probe started');
    },

    async flush(ms = STOP_FLUSH_MS) {
      seal();
      return pusher ? pusher.drain(ms) : true;
    },

    async stop(opts = {}) {
      if (state !== 'running') return;
      state = 'stopping';
      const graceMs = opts.graceMs ?? plan.probes.timeout + ABORT_GRACE_MS;
      await scheduler?.stop(graceMs);
      seal();
      const flushed = push.collectors.length === 0 ? true : await probe.flush(opts.flushMs ?? STOP_FLUSH_MS);
      await pusher?.stop();
      const left = spool?.stats();
      spool?.close();
      await health?.close();
      state = 'stopped';
      log.info(
        { flushed, spooled: left },
        flushed ? 'probe stopped; every batch delivered' : 'probe stopped; undelivered batches stay spooled for the next start',
      );
    },

    stats() {
      return {
        spool: spool?.stats() ?? { bytes: 0, batches: 0, dropped: 0 },
        checksInFlight: scheduler?.inFlight ?? 0,
        results: resultsTotal,
        batches: batchesTotal,
      };
    },

    runs() {
      return scheduler?.runs() ?? {};
    },

    record(results) {
      onResults(results);
    },
  };
  return probe;
}
