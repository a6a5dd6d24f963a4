/**
 * Errors of the probe: {@link CheckFailure}, which a check (or the DNS client and SMTP session
 * under it) throws when it cannot go on, carrying a code of the one failure catalogue
 * (protocol/failures.ts), and the log-only codes of the runtime (`code` field of log lines).
 */
import { failure, failureMessage, FAILURES, type FailureCode } from '../protocol/failures.js';
import type { ErrorClass, Failure } from '../protocol/checks/common.js';

/** A failure with a stable code; turned into the fields of a failed result by {@link failureOf}. */
export class CheckFailure extends Error {
  constructor(
    readonly code: FailureCode,
    /** What happened, without the code's meaning (that is prepended in the message). */
    readonly detail: string,
    /** Where it happened, when the thrower knows better than the catcher. */
    readonly phase?: string,
  ) {
    super(failureMessage(code, detail));
    this.name = 'CheckFailure';
  }
  get errorClass(): ErrorClass {
    return FAILURES[this.code].errorClass;
  }
}

/** The fields of a failed result for anything thrown: a CheckFailure keeps its code, anything else is `check_threw`. */
export function failureOf(phase: string, e: unknown): Failure {
  if (e instanceof CheckFailure) return failure(e.phase ?? phase, e.code, e.detail);
  return failure(phase, 'check_threw', e instanceof Error ? e.message : String(e));
}

export interface ProbeLogDef {
  readonly message: string;
}

/** Log-only codes of the runtime (failed results use protocol/failures.ts). */
export const PROBE_ERRORS = {
  push_rejected: { message: 'a collector rejected a batch for good (4xx); it is dropped for that collector' },
  push_unauthorized: { message: 'a collector does not accept the probe token; batches stay spooled and are retried slowly' },
  push_failed: { message: 'a push failed (network, timeout, 5xx, 408, 429); it is retried with backoff' },
  spool_torn_record: { message: 'the spool ended in a partly written record (a crash while writing); it was skipped' },
  spool_bad_record: { message: 'a spool record did not parse or failed its checksum; it was skipped' },
  spool_full: { message: 'the spool is full; the oldest batches were dropped' },
  spool_locked: { message: 'another probe process uses this spool directory' },
  spool_disk_full: {
    message:
      "the spool's disk is full (or not writable): the probe goes on, keeping results in memory (up to probes.push.spool_max_bytes, the oldest batches dropped and counted) and pushing them; new results are not durable until there is room",
  },
  spool_write_failed: { message: 'the spool could not be written (disk full or gone?)' },
  no_token: { message: 'no bearer token: the environment variable named by probes.push.token_env is empty' },
} as const satisfies Record<string, ProbeLogDef>;

export type ProbeErrorCode = keyof typeof PROBE_ERRORS;
