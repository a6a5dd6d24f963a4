/**
 * Error catalogue of the probe: the stable codes the runtime puts in failed results (`code`) and
 * in its log lines (`code` field). Checks add their own codes here, one entry each.
 */
import type { ErrorClass } from '../protocol/results.js';

export interface ProbeErrorDef {
  /** The error class a failed result with this code carries (absent for log-only codes). */
  readonly errorClass?: ErrorClass;
  readonly message: string;
}

export const PROBE_ERRORS = {
  // Failed results the runtime makes for a check.
  check_timeout: { errorClass: 'timeout', message: 'the check did not finish within its timeout' },
  check_threw: { errorClass: 'internal', message: 'the check threw (a bug or bad config)' },
  invalid_result: { errorClass: 'internal', message: 'the check returned a result that does not match the wire schema' },
  // Log-only codes of the runtime.
  push_rejected: { message: 'a collector rejected a batch for good (4xx); it is dropped for that collector' },
  push_unauthorized: { message: 'a collector does not accept the probe token; batches stay spooled and are retried slowly' },
  push_failed: { message: 'a push failed (network, timeout, 5xx, 408, 429); it is retried with backoff' },
  spool_torn_record: { message: 'the spool ended in a partly written record (a crash while writing); it was skipped' },
  spool_bad_record: { message: 'a spool record did not parse or failed its checksum; it was skipped' },
  spool_full: { message: 'the spool is full; the oldest batches were dropped' },
  spool_locked: { message: 'another probe process uses this spool directory' },
  spool_disk_full: {
    message: "the spool's disk is full (or not writable): the probe goes on, keeping results in memory (up to probes.push.spool_max_bytes, the oldest batches dropped and counted) and pushing them; new results are not durable until there is room",
  },
  spool_write_failed: { message: 'the spool could not be written (disk full or gone?)' },
  no_token: { message: 'no bearer token: the environment variable named by probes.push.token_env is empty' },
} as const satisfies Record<string, ProbeErrorDef>;

export type ProbeErrorCode = keyof typeof PROBE_ERRORS;

/** The fields of a failed result for a runtime code, with a detail appended to its message. */
export function runtimeFailure(code: 'check_timeout' | 'check_threw' | 'invalid_result', detail?: string) {
  const def = PROBE_ERRORS[code];
  return {
    ok: false as const,
    phase: 'runtime',
    errorClass: def.errorClass,
    code,
    message: (detail ? `${def.message}: ${detail}` : def.message).slice(0, 2000),
  };
}
