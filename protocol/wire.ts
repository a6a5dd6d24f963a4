/**
 * The wire format probe → collector (README, wire format):
 * `POST /v1/results` with `Authorization: Bearer <token>` and a {@link Batch} as JSON.
 *
 * The batch id makes retries idempotent: the collector applies a batch once.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CheckResult } from './results.js';

export const RESULTS_PATH = '/v1/results';

/** Probe ids and regions: short, label-safe. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';

/** At most this many results in one batch; the probe splits larger ones. */
export const MAX_RESULTS_PER_BATCH = 5000;

/** Latest Unix millisecond time the wire accepts (2100-01-01): a year-2^63 timestamp is refused. */
export const MAX_TIME_MS = 4_102_444_800_000;
/** Largest counter or sequence on the wire (safe integers only). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** Largest spool a probe may report (1 TiB). */
export const MAX_SPOOL_BYTES = 2 ** 40;

export const ProbeInfo = Type.Object(
  {
    id: Type.String({ pattern: ID_PATTERN, description: 'Probe id, bound to its token at the collector.' }),
    region: Type.String({ pattern: ID_PATTERN }),
    version: Type.String({ maxLength: 64 }),
    spool: Type.Optional(
      Type.Object(
        {
          bytes: Type.Integer({ minimum: 0, maximum: MAX_SPOOL_BYTES }),
          batches: Type.Integer({ minimum: 0, maximum: 1e9 }),
          dropped: Type.Integer({ minimum: 0, maximum: 1e12, description: 'Batches dropped from a full spool since the probe started.' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const BatchInfo = Type.Object(
  {
    id: Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'Unique per batch; retries reuse it.' }),
    seq: Type.Integer({ minimum: 0, maximum: MAX_SEQ, description: 'Per-probe sequence number.' }),
    createdAt: Type.Integer({ minimum: 0, maximum: MAX_TIME_MS, description: 'Unix milliseconds.' }),
    stream: Type.Optional(
      Type.String({
        minLength: 8,
        maxLength: 64,
        pattern: '^[A-Za-z0-9_-]+$',
        description: 'Id of the spool the batch comes from (new when a spool is created); results are numbered within it.',
      }),
    ),
    firstResult: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_SEQ,
        description: 'Sequence number of results[0] within the stream; result i has firstResult + i. The collector applies each numbered result once.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const Batch = Type.Object(
  {
    probe: ProbeInfo,
    batch: BatchInfo,
    results: Type.Array(CheckResult, { maxItems: MAX_RESULTS_PER_BATCH }),
  },
  { additionalProperties: false, $id: 'mailprobe.batch' },
);

export type ProbeInfo = Static<typeof ProbeInfo>;
export type Batch = Static<typeof Batch>;

/** Body of a 2xx answer. */
export interface PushReply {
  /** `dry_run`: the answer to `?dry_run=1` (authenticated and validated, nothing applied). */
  status: 'accepted' | 'duplicate' | 'dry_run';
  results: number;
  /** The collector's clock (Unix ms) when it answered a dry run, for the preflight's clock offset. */
  serverTime?: number;
}

/** Body of a 4xx/5xx answer. */
export interface ErrorReply {
  error: string;
  message: string;
}
