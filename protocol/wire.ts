/**
 * The wire format probe → collector (DESIGN §5):
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

export const ProbeInfo = Type.Object(
  {
    id: Type.String({ pattern: ID_PATTERN, description: 'Probe id, bound to its token at the collector.' }),
    region: Type.String({ pattern: ID_PATTERN }),
    version: Type.String({ maxLength: 64 }),
    spool: Type.Optional(
      Type.Object(
        {
          bytes: Type.Integer({ minimum: 0 }),
          batches: Type.Integer({ minimum: 0 }),
          dropped: Type.Integer({ minimum: 0, description: 'Batches dropped from a full spool since the probe started.' }),
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
    seq: Type.Integer({ minimum: 0, description: 'Per-probe sequence number.' }),
    createdAt: Type.Integer({ minimum: 0, description: 'Unix milliseconds.' }),
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
  status: 'accepted' | 'duplicate';
  results: number;
}

/** Body of a 4xx/5xx answer. */
export interface ErrorReply {
  error: string;
  message: string;
}
