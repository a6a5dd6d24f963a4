/**
 * The scheduler: runs every job of every registered check at its interval (plan.probes.interval
 * outside the cutover window, window_interval inside, re-evaluated on every wake), each target
 * at its own random offset within the interval, at most plan.probes.concurrency at once, each
 * under a timeout delivered through its AbortSignal. A check that throws, overruns or returns
 * something invalid becomes a failed result; the probe never crashes because of a check.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Log as Logger } from './log.js';
import type { PlanConfig } from '../config/schema.js';
import type { CheckResult, CheckType } from '../protocol/results.js';
import type { CheckContext, ResultLog } from './check.js';
import type { CheckRegistry, RegisteredCheck, RegisteredJob } from './checks/index.js';
import { failedLike } from '../protocol/checks/index.js';
import type { Failure } from '../protocol/checks/common.js';
import { failure } from '../protocol/failures.js';
import { failureOf } from './errors.js';
import { isCheckResult, resultProblem } from './valid-result.js';
import type { ProbeMetrics } from './self-metrics.js';

/** After a timeout fires, how long a check may still take to return its own (more precise) failure. */
export const ABORT_GRACE_MS = 200;
/** The scheduler wakes at least this often, so a window boundary changes the interval promptly. */
export const MAX_WAKE_MS = 1000;
/** Results kept per check type for ctx.history (of the types a running check reads). */
export const HISTORY_MAX = 5000;
/** Results remembered per job as the shape of its failed results. */
const TEMPLATE_MAX = 64;

/** Recent results of this probe, bounded per type. */
export class ResultHistory implements ResultLog {
  readonly #byType = new Map<CheckType, CheckResult[]>();
  /**
   * @param kept the check types to keep results of (default all): a probe keeps only what its
   *   checks read (`CheckSpec.reads`), so a probe without ttl holds no dns results at all.
   */
  constructor(
    readonly max = HISTORY_MAX,
    readonly kept?: ReadonlySet<CheckType>,
  ) {}

  add(results: readonly CheckResult[]): void {
    for (const r of results) {
      if (this.kept && !this.kept.has(r.type)) continue;
      let list = this.#byType.get(r.type);
      if (!list) {
        list = [];
        this.#byType.set(r.type, list);
      }
      list.push(r);
      if (list.length > this.max) list.splice(0, list.length - this.max);
    }
  }

  since<T extends CheckType>(type: T, sinceMs: number): readonly Extract<CheckResult, { type: T }>[] {
    const list = (this.#byType.get(type) ?? []) as Extract<CheckResult, { type: T }>[];
    return list.filter((r) => r.startedAt >= sinceMs).sort((a, b) => a.startedAt - b.startedAt);
  }
}

interface Slot {
  readonly type: CheckType;
  readonly key: string;
  job: RegisteredJob;
  /** Random position within the interval, so targets do not all fire at once. */
  readonly frac: number;
  /** The due time of the last run started; undefined before the first. */
  lastDue: number | undefined;
  running: boolean;
  readonly state: Map<string, unknown>;
  runs: number;
  /** What the check itself returned last, the shape of the failed results the runtime makes. */
  template: CheckResult[];
}

export interface SchedulerOptions {
  plan: PlanConfig;
  registry: CheckRegistry;
  /** Only these check types (default: every registered one). */
  types?: readonly CheckType[];
  probe: { id: string; region: string };
  log: Logger;
  now: () => number;
  /** Receives the results of each run, in completion order. */
  onResults: (results: CheckResult[]) => void;
  metrics?: ProbeMetrics;
  history?: ResultHistory;
  random?: () => number;
}

type Outcome = { kind: 'ok'; value: unknown } | { kind: 'threw'; error: unknown } | { kind: 'timeout' };

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #checks: RegisteredCheck[];
  /** Per check type: when its targets are expanded again (one scheduling round). */
  readonly #expandAt = new Map<CheckType, number>();
  readonly history: ResultHistory;
  /**
   * The controllers of the runs in progress: stop() aborts each. One set instead of a listener
   * per run on a shared stop signal, which grew past Node's 10-listener warning at concurrency > 10.
   */
  readonly #aborts = new Set<AbortController>();
  readonly #running = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #started = false;
  #inFlight = 0;
  readonly #windowStart: number;
  readonly #windowEnd: number;

  constructor(o: SchedulerOptions) {
    this.#o = o;
    const all = Object.values(o.registry).filter((c): c is RegisteredCheck => c !== undefined);
    this.#checks = o.types ? all.filter((c) => o.types?.includes(c.type)) : all;
    this.history = o.history ?? new ResultHistory(HISTORY_MAX, new Set(this.#checks.flatMap((c) => c.reads)));
    this.#windowStart = Date.parse(o.plan.cutover.window.start);
    this.#windowEnd = Date.parse(o.plan.cutover.window.end);
  }

  /** The check types this scheduler runs. */
  get types(): CheckType[] {
    return this.#checks.map((c) => c.type);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  inWindow(t: number): boolean {
    return t >= this.#windowStart && t < this.#windowEnd;
  }

  /** The interval in force at time t. */
  intervalAt(t: number): number {
    return this.inWindow(t) ? this.#o.plan.probes.window_interval : this.#o.plan.probes.interval;
  }

  /** Runs started per type+key (for tests and the health endpoint). */
  runs(): Record<string, number> {
    return Object.fromEntries([...this.#slots.values()].map((s) => [`${s.type}/${s.key}`, s.runs]));
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#startedAt = this.#o.now();
    this.#tick();
  }

  /**
   * Stops scheduling, then waits up to graceMs for runs in progress; runs still going after that
   * are aborted and given ABORT_GRACE_MS more to return their results.
   */
  async stop(graceMs: number): Promise<void> {
    this.#started = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running.size === 0) return;
    const all = Promise.allSettled([...this.#running]);
    const finished = await Promise.race([all.then(() => true), sleep(graceMs).then(() => false)]);
    if (!finished) {
      const reason = new Error('probe stopping');
      for (const ac of this.#aborts) ac.abort(reason);
      await Promise.race([all, sleep(ABORT_GRACE_MS * 2)]);
    }
  }

  #expand(check: RegisteredCheck, now: number): void {
    let jobs: RegisteredJob[];
    try {
      jobs = check.jobs(this.#o.plan);
    } catch (err) {
      this.#o.log.error({ code: 'check_threw', check: check.type, err }, 'the targets of a check could not be derived from the plan');
      jobs = [];
    }
    const keep = new Set<string>();
    for (const job of jobs) {
      const id = `${check.type}\u0000${job.key}`;
      keep.add(id);
      const slot = this.#slots.get(id);
      if (slot) slot.job = job;
      else {
        const random = this.#o.random ?? Math.random;
        this.#slots.set(id, {
          type: check.type,
          key: job.key,
          job,
          frac: random(),
          lastDue: undefined,
          running: false,
          state: new Map(),
          runs: 0,
          template: [],
        });
      }
    }
    for (const [id, slot] of this.#slots) if (slot.type === check.type && !keep.has(id)) this.#slots.delete(id);
    this.#expandAt.set(check.type, now + this.intervalAt(now));
  }

  #dueAt(slot: Slot, now: number): number {
    const interval = this.intervalAt(now);
    return slot.lastDue === undefined ? this.#startedAt + slot.frac * interval : slot.lastDue + interval;
  }

  #tick(): void {
    this.#timer = undefined;
    if (!this.#started) return;
    const now = this.#o.now();
    for (const check of this.#checks) {
      if ((this.#expandAt.get(check.type) ?? 0) <= now) this.#expand(check, now);
    }
    const due: { slot: Slot; at: number }[] = [];
    let next = now + MAX_WAKE_MS;
    for (const slot of this.#slots.values()) {
      if (slot.running) continue;
      const at = this.#dueAt(slot, now);
      if (at <= now) due.push({ slot, at });
      else next = Math.min(next, at);
    }
    // The most overdue first, so a concurrency limit delays runs fairly.
    due.sort((a, b) => a.at - b.at);
    for (const { slot, at } of due) {
      if (this.#inFlight >= this.#o.plan.probes.concurrency) break;
      this.#launch(slot, at, now);
    }
    // Not unref'd: a running scheduler is what keeps a probe process alive.
    this.#timer = setTimeout(() => this.#tick(), Math.max(1, next - now));
  }

  #launch(slot: Slot, due: number, now: number): void {
    const interval = this.intervalAt(now);
    // Runs that fell more than an interval behind are skipped, not caught up in a burst.
    slot.lastDue = now - due > interval ? now : due;
    slot.running = true;
    slot.runs++;
    this.#inFlight++;
    this.#o.metrics?.inFlight.set({ region: this.#o.probe.region, probe: this.#o.probe.id }, this.#inFlight);
    const p = this.#run(slot).finally(() => {
      slot.running = false;
      this.#inFlight--;
      this.#o.metrics?.inFlight.set({ region: this.#o.probe.region, probe: this.#o.probe.id }, this.#inFlight);
      this.#running.delete(p);
      if (this.#started) {
        // A finished run frees a concurrency slot: look for waiting runs now.
        clearTimeout(this.#timer);
        this.#tick();
      }
    });
    this.#running.add(p);
  }

  async #run(slot: Slot): Promise<void> {
    const { plan, probe, log, now } = this.#o;
    const check = this.#checks.find((c) => c.type === slot.type);
    if (!check) return;
    const timeoutMs = check.timeoutMs(plan);
    const ac = new AbortController();
    this.#aborts.add(ac);
    const startedAt = now();
    const t0 = performance.now();
    const ctx: CheckContext = {
      signal: ac.signal,
      probe,
      log: log.child({ check: slot.type, target: slot.key }),
      now,
      state: slot.state,
      history: this.history,
    };
    const running: Promise<Outcome> = Promise.resolve()
      .then(() => slot.job.run(ctx))
      .then(
        (value): Outcome => ({ kind: 'ok', value }),
        (error: unknown): Outcome => ({ kind: 'threw', error }),
      );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => {
        ac.abort(new DOMException(`check timed out after ${timeoutMs} ms`, 'TimeoutError'));
        resolve({ kind: 'timeout' });
      }, timeoutMs);
    });
    let outcome = await Promise.race([running, timedOut]);
    clearTimeout(timer);
    if (outcome.kind === 'timeout') {
      // Give the check a moment to return its own failure, which names the phase it was in.
      const late = await Promise.race([running, sleep(ABORT_GRACE_MS).then((): Outcome => ({ kind: 'timeout' }))]);
      if (late.kind === 'ok') outcome = late;
    }
    this.#aborts.delete(ac);
    const seconds = (performance.now() - t0) / 1000;
    // Every target reports every run: in the series of what it returned before, else named after its target.
    const fail = (f: Failure): CheckResult[] => {
      const run = { startedAt, durationSeconds: seconds, failure: f };
      if (slot.template.length > 0) return slot.template.map((t) => failedLike(t, run));
      return slot.job.failed(run);
    };

    let results: CheckResult[];
    let result: string;
    if (outcome.kind === 'timeout') {
      results = fail(failure('runtime', 'check_timeout', `${timeoutMs} ms`));
      result = 'timeout';
    } else if (outcome.kind === 'threw') {
      const err = outcome.error;
      const f = failureOf('runtime', err);
      if (f.code === 'check_threw') log.error({ code: 'check_threw', check: slot.type, target: slot.key, err }, 'a check threw; reported as a failed result');
      else log.warn({ code: f.code, check: slot.type, target: slot.key, reason: f.message }, 'a check could not run; reported as a failed result');
      results = fail(f);
      result = f.errorClass;
    } else {
      const list = Array.isArray(outcome.value) ? (outcome.value as unknown[]) : [outcome.value];
      results = [];
      const valid: CheckResult[] = [];
      for (const r of list) {
        if (isCheckResult(r)) {
          results.push(r);
          valid.push(r);
        } else {
          const problem = resultProblem(r);
          log.error({ code: 'invalid_result', check: slot.type, target: slot.key, problem }, 'a check returned an invalid result; reported as a failed result');
          results.push(...fail(failure('runtime', 'invalid_result', problem)));
        }
      }
      if (valid.length > 0) slot.template = valid.slice(0, TEMPLATE_MAX);
      const firstFailed = results.find((r) => !r.ok);
      result = firstFailed ? (firstFailed.errorClass ?? 'internal') : 'success';
    }
    const labels = { region: probe.region, probe: probe.id, type: slot.type };
    this.#o.metrics?.checkRuns.inc({ ...labels, result });
    this.#o.metrics?.checkDuration.observe(labels, seconds);
    if (results.length === 0) return;
    this.history.add(results);
    try {
      this.#o.onResults(results);
    } catch (err) {
      log.error({ err, check: slot.type }, 'results could not be spooled');
    }
  }
}
