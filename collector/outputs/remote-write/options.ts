/**
 * The remote-write output's settings: the plan's collector.remote_write section as options, with
 * the schema's defaults (config/schema.ts is the one place they are written down).
 */
import { hostname } from 'node:os';
import { Value } from '@sinclair/typebox/value';
import type { Registry } from 'prom-client';
import { RemoteWrite, type PlanConfig } from '../../../config/schema.js';

export interface RemoteWriteOptions {
  /** Receiver URL, e.g. http://127.0.0.1:9090/api/v1/write. */
  url: string;
  /** Extra headers (auth, X-Scope-OrgID). */
  headers?: Readonly<Record<string, string>>;
  /** `job` label. Default: the schema's (mailprobe-collector). */
  job?: string;
  /** `instance` label (this replica). Default env MAILPROBE_REPLICA, else the host name. */
  instance?: string;
  /** Samples per request. */
  batchSize?: number;
  /** Partial batches are sent after this long (ms). */
  flushIntervalMs?: number;
  /** Queue bound in samples; the oldest are dropped beyond it. */
  queueMaxSamples?: number;
  /** Unchanged series are sent again after this long (ms; like a scrape interval). */
  resendIntervalMs?: number;
  /** First retry delay (ms). */
  retryMinMs?: number;
  /** Longest retry delay (ms). */
  retryMaxMs?: number;
  /** Timeout of one request (ms). */
  requestTimeoutMs?: number;
  /** Requests in flight at once; a series always goes through the same shard, so its samples stay in order. */
  shards?: number;
  /** How long close() keeps trying to deliver what is queued. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Self-metrics go here (never the global registry). */
  registry: Registry;
  now?: () => number;
  log?: { warn(obj: object, msg: string): void };
}

export type ResolvedOptions = Required<Omit<RemoteWriteOptions, 'log' | 'headers'>> & Pick<RemoteWriteOptions, 'log' | 'headers'>;

type Section = NonNullable<PlanConfig['collector']['remote_write']>;

/** The schema's defaults of collector.remote_write (durations in ms). */
function schemaDefaults(): Section {
  return Value.Decode(RemoteWrite, Value.Default(RemoteWrite, { url: 'http://127.0.0.1/' })) as Section;
}

/** Options with every default filled in: the schema's, then the process's (`instance`), then `opts`. */
export function resolveOptions(opts: RemoteWriteOptions, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  const d = schemaDefaults();
  return {
    job: d.job,
    instance: env.MAILPROBE_REPLICA ?? hostname(),
    batchSize: d.batch_size,
    flushIntervalMs: d.flush_interval,
    queueMaxSamples: d.queue_max_samples,
    resendIntervalMs: d.resend_interval,
    retryMinMs: d.retry_min,
    retryMaxMs: d.retry_max,
    requestTimeoutMs: d.request_timeout,
    shards: d.shards,
    closeTimeoutMs: 5000,
    now: Date.now,
    ...opts,
  };
}

/** Options from the plan's collector.remote_write section (undefined when absent or disabled). */
export function remoteWriteOptionsFromPlan(plan: PlanConfig, registry: Registry, env: NodeJS.ProcessEnv = process.env): RemoteWriteOptions | undefined {
  const rw = plan.collector.remote_write;
  if (!rw?.enabled) return undefined;
  const headers: Record<string, string> = { ...rw.headers };
  if (rw.bearer_token_env) {
    const token = env[rw.bearer_token_env];
    if (!token) throw new Error(`collector.remote_write.bearer_token_env: environment variable ${rw.bearer_token_env} is not set`);
    headers.authorization = `Bearer ${token}`;
  }
  return {
    url: rw.url,
    headers,
    job: rw.job,
    instance: rw.replica ?? env.MAILPROBE_REPLICA ?? hostname(),
    batchSize: rw.batch_size,
    flushIntervalMs: rw.flush_interval,
    queueMaxSamples: rw.queue_max_samples,
    resendIntervalMs: rw.resend_interval,
    retryMinMs: rw.retry_min,
    retryMaxMs: rw.retry_max,
    requestTimeoutMs: rw.request_timeout,
    shards: rw.shards,
    registry,
  };
}
