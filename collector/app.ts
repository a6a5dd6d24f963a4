/**
 * The collector: a Fastify app built from plugins. Probes push batches; Prometheus scrapes.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { PlanConfig } from '../config/schema.js';
import { COLLECTOR_JOB } from '../protocol/metrics.js';
import { COLLECTOR_ERRORS, CollectorError, type CollectorErrorCode } from './errors.js';
import { Ingest } from './ingest.js';
import type { Output } from './outputs/output.js';
import { remoteWriteOptionsFromPlan } from './outputs/remote-write/options.js';
import { healthPlugin } from './plugins/health.js';
import { metricsPlugin } from './plugins/metrics.js';
import { resultsPlugin } from './plugins/results.js';
import { statusPlugin } from './plugins/status.js';
import { StatusOutput } from './outputs/status.js';
import { StatusModel } from './status/model.js';
import { RateLimiter } from './rate-limit.js';
import { createSelfMetrics } from './self-metrics.js';
import { logOutputs, watchReceiver } from './output-log.js';
import { SeriesStore } from './store/series-store.js';

export interface CollectorOptions {
  plan: PlanConfig;
  /** Injected; never the global registry. Default: a new one. */
  registry?: Registry;
  /** pino logger, or false for none. */
  logger?: Logger | false;
  /** Further outputs besides /metrics (remote write). */
  outputs?: Output[];
  now?: () => number;
  /** How often silent probes are swept. Default 30s. */
  sweepIntervalMs?: number;
  /** A request (headers and body) must arrive within this; slower clients get 408. Default 30s. */
  requestTimeoutMs?: number;
  /** Warn when the remote-write receiver has accepted no request for this long. Default 60 000 ms (one minute). */
  remoteWriteWarnAfterMs?: number;
}

export interface Collector {
  app: FastifyInstance;
  registry: Registry;
  ingest: Ingest;
  /** The result series (/metrics renders them unless remote write has results_on_metrics: false; remote write sends them). */
  store: SeriesStore;
  /** The status page's state; undefined when collector.status.enabled is false. */
  status: StatusModel | undefined;
}

/** Maps fastify's own errors to the collector's catalogue. */
function codeOf(err: FastifyError & { validation?: AjvIssue[] }): CollectorErrorCode {
  if (err instanceof CollectorError) return err.code;
  if (err.validation) return err.validation.some((v) => v.keyword === 'additionalProperties') ? 'unknown_field' : 'invalid_batch';
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'bad_json';
  }
  if (err instanceof SyntaxError || err.statusCode === 400) return 'bad_json';
  if (err.statusCode === 503) return 'draining';
  return 'internal';
}

type AjvIssue = { keyword: string; instancePath: string; message?: string; params: { additionalProperty?: string; allowedValues?: unknown[] } };

function detail(err: FastifyError & { validation?: AjvIssue[] }): string {
  const v = err.validation?.[0];
  if (!v) return err.message;
  const at = v.instancePath.replace(/^\//, '').replace(/\//g, '.') || 'body';
  if (v.keyword === 'additionalProperties') return `${at}: unknown field "${v.params.additionalProperty ?? '?'}"`;
  if (v.keyword === 'enum') return `${at}: must be one of ${(v.params.allowedValues ?? []).map((a) => JSON.stringify(a)).join(', ')}`;
  return `${at}: ${v.message ?? v.keyword}`;
}

export async function buildCollector(opts: CollectorOptions): Promise<Collector> {
  const { plan } = opts;
  const cfg = plan.collector;
  const registry = opts.registry ?? new Registry();
  const now = opts.now ?? Date.now;
  const self = createSelfMetrics(
    registry,
    { start: Date.parse(plan.cutover.window.start), end: Date.parse(plan.cutover.window.end) },
    now,
    plan.cutover.servers,
  );
  // collector.remote_write: samples also (or only, with results_on_metrics: false) go to a
  // remote-write receiver (docs/architecture.md, outputs).
  const rw = remoteWriteOptionsFromPlan(plan, registry);
  // The result series live once, in the store; /metrics renders it (unless results_on_metrics:
  // false) and remote write sends from it.
  const store = new SeriesStore();
  const exposed = !rw || cfg.remote_write?.results_on_metrics !== false;
  const outputs: Output[] = [store, ...(opts.outputs ?? [])];
  if (rw) {
    // Loaded only when configured: its HTTP client (undici), protobufjs and snappyjs cost an idle
    // collector ~4 MiB of RSS it does not need without remote write (test/cli/lean-collector.test.ts).
    const { RemoteWriteOutput } = await import('./outputs/remote-write.js');
    outputs.push(new RemoteWriteOutput({ ...rw, store, now, ...(opts.logger ? { log: opts.logger.child({ output: 'remote-write' }) } : {}) }));
  }
  // Say where everything goes, and warn when the remote-write receiver never accepts.
  if (opts.logger) {
    logOutputs(
      opts.logger,
      plan,
      rw && { url: rw.url, job: rw.job ?? COLLECTOR_JOB, instance: rw.instance ?? '', queueMaxSamples: rw.queueMaxSamples ?? 500_000 },
    );
  }
  const stopWatch =
    rw && opts.logger
      ? watchReceiver({ registry, log: opts.logger, url: rw.url, now, ...(opts.remoteWriteWarnAfterMs ? { warnAfterMs: opts.remoteWriteWarnAfterMs } : {}) })
      : undefined;
  // The status page (GET /, /v1/status) keeps its own bounded state from the accepted results.
  const status = cfg.status.enabled ? new StatusModel(plan, { now }) : undefined;
  if (status) outputs.push(new StatusOutput(status));
  const ingest = new Ingest(
    {
      maxSeriesPerProbe: cfg.max_series_per_probe,
      maxLabelLength: cfg.max_label_length,
      dedupBatches: cfg.dedup_batches,
      probeStaleAfterMs: cfg.probe_stale_after,
      servers: plan.cutover.servers,
    },
    store,
    outputs,
    self,
    now,
  );

  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    loggerInstance: opts.logger ? (opts.logger as FastifyBaseLogger) : undefined,
    logger: opts.logger === false ? false : undefined,
    bodyLimit: cfg.body_limit,
    // Slow-drip clients are cut off rather than holding sockets forever.
    requestTimeout,
    http: {
      // Node uses the larger of headersTimeout (default 60 s) and requestTimeout as the limit of a
      // whole request: a body dripping a byte at a time lived 60 s, not 30 s.
      headersTimeout: requestTimeout,
      // Node looks for expired requests only this often (default 30 s, up to twice the timeout).
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(requestTimeout / 4))),
    },
    connectionTimeout: 60_000,
    keepAliveTimeout: 10_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, discriminator: true } },
    // One line per rejection from the error handler; none per accepted push.
    logController: new LogController({ disableRequestLogging: true }),
  });

  // Only JSON is spoken; anything else is 415 rather than a confusing schema error.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: cfg.body_limit }, app.getDefaultJsonParser('error', 'error'));

  let closing = false;
  app.addHook('onClose', async () => {
    closing = true;
    clearInterval(sweeper);
    stopWatch?.();
    await Promise.all(outputs.map((o) => o.close()));
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const code = codeOf(err);
    const status = COLLECTOR_ERRORS[code].status;
    self.rejections.inc({ code });
    if (req.url.startsWith('/v1/')) self.batches.inc({ result: 'rejected' });
    const message =
      err instanceof CollectorError
        ? err.message
        : code === 'internal'
          ? COLLECTOR_ERRORS.internal.message
          : `${COLLECTOR_ERRORS[code].message}: ${detail(err)}`;
    if (status >= 500) req.log.error({ err }, 'request failed');
    else if (code !== 'rate_limited') req.log.info({ probe: req.probeId, code, status, message }, 'rejected');
    if (err instanceof CollectorError && err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
    void reply.code(status).send({ error: code, message });
  });
  app.setNotFoundHandler((req, reply) => {
    self.rejections.inc({ code: 'not_found' });
    void reply.code(404).send({ error: 'not_found', message: `${COLLECTOR_ERRORS.not_found.message}: ${req.method} ${req.url}` });
  });

  await app.register(healthPlugin, { ready: () => !closing });
  await app.register(metricsPlugin, { registry, store: exposed ? store : undefined });
  await app.register(resultsPlugin, { tokens: cfg.tokens, ingest, limiter: new RateLimiter(cfg.push_rate, cfg.push_burst, now) });
  if (status) await app.register(statusPlugin, { model: status, settings: cfg.status, now });

  const sweeper = setInterval(() => {
    const gone = ingest.sweep();
    if (gone.length > 0) app.log.info({ probes: gone }, 'removed gauges of silent probes');
  }, opts.sweepIntervalMs ?? 30_000);
  sweeper.unref();

  return { app, registry, ingest, store, status };
}
