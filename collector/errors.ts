/**
 * Error catalogue of the collector: every 4xx/5xx it answers carries one of these stable codes
 * as `{ error, message }`, and `mailprobe_collector_rejections_total{code}` counts them.
 */
export const COLLECTOR_ERRORS = {
  unauthorized: { status: 401, message: 'missing or unknown bearer token' },
  probe_mismatch: { status: 403, message: 'this token belongs to another probe id' },
  not_found: { status: 404, message: 'no such route' },
  bad_json: { status: 400, message: 'the body is not valid JSON' },
  invalid_batch: { status: 400, message: 'the batch does not match the wire schema' },
  unknown_field: { status: 400, message: 'the batch has a field the wire schema does not know' },
  body_too_large: { status: 413, message: 'the body is larger than collector.body_limit' },
  region_mismatch: { status: 409, message: 'the probe is bound to another region' },
  unsupported_media_type: { status: 415, message: 'send Content-Type: application/json' },
  unsupported_encoding: { status: 415, message: 'send the body without Content-Encoding (identity)' },
  series_limit: { status: 422, message: 'the batch would take the probe over collector.max_series_per_probe' },
  unknown_server: { status: 422, message: 'a result names a server IP or side the plan does not have' },
  rate_limited: { status: 429, message: 'too many pushes from this probe (collector.push_rate)' },
  draining: { status: 503, message: 'the collector is shutting down' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type CollectorErrorCode = keyof typeof COLLECTOR_ERRORS;

export class CollectorError extends Error {
  readonly code: CollectorErrorCode;
  readonly statusCode: number;
  /** Sent as Retry-After (429). */
  retryAfterSeconds?: number;
  constructor(code: CollectorErrorCode, detail?: string) {
    super(detail ? `${COLLECTOR_ERRORS[code].message}: ${detail}` : COLLECTOR_ERRORS[code].message);
    this.code = code;
    this.statusCode = COLLECTOR_ERRORS[code].status;
  }
}
