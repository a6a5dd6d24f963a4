/**
 * The contract between the probe runtime and its checks.
 *
 * Each file under `probe/checks/` exports one function `(target, settings, ctx) => Promise<Result>`.
 * The runtime owns timeouts (`ctx.signal`), scheduling and metrics; a check only measures and
 * returns data. A failed check returns `ok: false` with phase, errorClass, code and message; it
 * throws only for bugs and bad config.
 */
import type { Logger } from 'pino';
import type { PlanConfig } from '../config/schema.js';
import type { CheckResult, CheckType, ErrorClass } from '../protocol/results.js';

export interface CheckContext {
  /** Aborted when the runtime's per-check timeout fires or the probe stops. */
  readonly signal: AbortSignal;
  readonly plan: PlanConfig;
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

/**
 * A registry entry: the function and how the plan expands into its targets.
 * `targets` is called once per scheduling round so plan-derived targets stay in one place.
 */
export interface CheckSpec<Target = unknown, Settings = unknown> {
  readonly type: CheckType;
  readonly run: CheckFn<Target, Settings>;
  /** One entry per target; `key` is stable across rounds (used for state and offsets). */
  targets(plan: PlanConfig): { key: string; target: Target; settings: Settings }[];
  /** Timeout for one run; default plan.probes.timeout. */
  timeoutMs?(plan: PlanConfig): number;
}

/** What one check run returns: one result or several (one per resolver, per record type...). */
export type CheckOutput<R extends CheckResult = CheckResult> = R | R[];

export type CheckFn<Target = unknown, Settings = unknown, R extends CheckResult = CheckResult> = (
  target: Target,
  settings: Settings,
  ctx: CheckContext,
) => Promise<CheckOutput<R>>;

/** Fields of a failed result. */
export interface Failure {
  ok: false;
  phase: string;
  errorClass: ErrorClass;
  code: string;
  message: string;
}

export function failure(phase: string, errorClass: ErrorClass, code: string, message: string): Failure {
  return { ok: false, phase, errorClass, code, message: message.slice(0, 2000) };
}

export type { CheckResult, CheckType };
