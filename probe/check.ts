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
