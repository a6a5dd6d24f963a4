/**
 * The contract between the probe runtime and its checks.
 *
 * Each file under `probe/checks/` exports one {@link CheckSpec}: how the plan expands into its
 * targets (each with the settings that check needs, and nothing else of the plan) and
 * `run(target, settings, ctx)`. The runtime owns timeouts (`ctx.signal`), scheduling and
 * metrics; a check only measures and returns data. A failed check returns `ok: false` with
 * phase, errorClass, code and message (see protocol/failures.ts); it throws a
 * {@link CheckFailure} when it cannot run at all, and anything else only for bugs.
 */
import type { Log as Logger } from './log.js';
import type { PlanConfig } from '../config/schema.js';
import type { CheckResult, CheckType, ResultOf, TargetOf } from '../protocol/checks/index.js';

export interface CheckContext {
  /** Aborted when the runtime's per-check timeout fires or the probe stops. */
  readonly signal: AbortSignal;
  readonly probe: { readonly id: string; readonly region: string };
  readonly log: Logger;
  /** Wall clock in Unix ms (injectable for tests). */
  now(): number;
  /**
   * State that persists across runs of this check for this target (the runtime keeps one
   * object per check type + target key). For checks that derive figures over time (ttl).
   */
  readonly state: Map<string, unknown>;
  /** Recent results of this probe, which checks that derive figures from others read. */
  readonly history: ResultLog;
}

export interface ResultLog {
  /** Results of one type that started at or after `sinceMs`, oldest first (bounded by the runtime). */
  since<T extends CheckType>(type: T, sinceMs: number): readonly Extract<CheckResult, { type: T }>[];
}

/** One target of a check with the settings its run gets. */
export interface CheckJob<K extends CheckType, Settings> {
  /** Stable across rounds (used for state and offsets). */
  key: string;
  /** What the run measures; its failed results are named after it (protocol/checks/<type>.ts). */
  target: TargetOf<K>;
  settings: Settings;
}

/**
 * The probe side of one check type: how the plan expands into its jobs and how one is run.
 * `targets` is called once per scheduling round so plan-derived targets stay in one place.
 */
export interface CheckSpec<K extends CheckType, Settings> {
  readonly type: K;
  readonly run: CheckFn<K, Settings>;
  /**
   * The check types whose earlier results its runs read through `ctx.history` (ttl reads dns).
   * The probe keeps history only for types a running check reads; default none.
   */
  readonly reads?: readonly CheckType[];
  targets(plan: PlanConfig): CheckJob<K, Settings>[];
  /** Timeout for one run; default plan.probes.timeout. */
  timeoutMs?(plan: PlanConfig): number;
  /**
   * What keeps this check from running at all that is known before the first run (a secret
   * not in the environment, a file that cannot be read), one `what: why` line each: the probe
   * refuses to start with them.
   */
  setupProblems?(plan: PlanConfig, env: NodeJS.ProcessEnv): string[];
}

/** What one check run returns: one result or several (one per resolver, per record type...). */
export type CheckOutput<R extends CheckResult = CheckResult> = R | R[];

export type CheckFn<K extends CheckType, Settings> = (target: TargetOf<K>, settings: Settings, ctx: CheckContext) => Promise<CheckOutput<ResultOf<K>>>;

export type { CheckResult, CheckType };
