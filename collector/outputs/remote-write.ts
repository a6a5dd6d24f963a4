/**
 * The remote-write output (docs/architecture.md, outputs): sends every sample, with the probe's own timestamp, to a
 * Prometheus remote-write receiver (Prometheus --web.enable-remote-write-receiver, Mimir, Thanos
 * Receive, VictoriaMetrics) as remote-write 1.0 (protobuf WriteRequest, snappy), batched, retried
 * with exponential backoff on 5xx, 429 and network errors, through a bounded queue.
 *
 * Design (how replicas and HA fit together):
 * - Every series carries `job` (default mailprobe-collector) and `instance` = this replica's id,
 *   the same two labels a scrape would add. The recording rules already deduplicate the HA pair
 *   with `max without (instance) (...)`, so the same rules and dashboards work unchanged on
 *   scraped and on remote-written data, and each replica's series never collide with another's
 *   (no out-of-order conflicts between replicas).
 * - Remote write needs cumulative values, so the output keeps, per series, what any client library
 *   keeps: the counter total, the histogram buckets/sum/count, the last gauge value and the last
 *   timestamp sent. It keeps no per-result or per-batch state and no state shared between replicas.
 * - HA pair (probes push every batch to every collector): each replica sees every result, so its
 *   series equal the other's but for `instance`; `max without (instance)` picks one. Losing a
 *   replica leaves the other's series (no gap).
 * - Scale-out behind a load balancer (each batch reaches one replica): route by probe (hash on the
 *   Authorization header or session affinity) so one replica owns a probe's series; then
 *   `max without (instance)` still holds for per-probe series. Without affinity, counters are split
 *   across replicas and must be summed (`sum without (instance)`), which the shipped rules do not do.
 *   After a re-balance the old replica stops resending a probe's gauges once the probe has been
 *   silent there for collector.probe_stale_after (stale markers from the sweep).
 * - Gauges: a value older (by probe time) than the one already held is ignored, so the latest
 *   check wins even when batches arrive out of order (spool replays). Every series (gauge, counter,
 *   histogram) not sent for resend_interval (< 5 min, the PromQL lookback; default 30 s, like a
 *   scrape interval) is sent again with its last value at the current time, so it never goes
 *   stale while the collector holds it, and rate() windows hold samples of unchanged counters as
 *   they would when scraped (with resends only every minute, a 1m rate window of a counter that
 *   did not move holds one sample and rate() answers nothing instead of 0).
 * - Timestamps per series only move forward (a receiver rejects a whole request for one
 *   out-of-order sample): a sample older than the last one sent is sent 1 ms after it. They are also
 *   kept within [now - 50 min, now] (Prometheus refuses samples more than 1 h behind its head).
 * - Stale markers (NaN 0x7ff0000000000002) go out when a series is removed (a silent probe's gauges,
 *   the other side of a one-of gauge) and for every series when the collector shuts down (a
 *   replica leaving, like a target that is no longer scraped).
 */
import { hostname } from 'node:os';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Agent, request } from 'undici';
import type { PlanConfig } from '../../config/schema.js';
import { backoff } from '../../protocol/backoff.js';
import { COLLECTOR_JOB, METRICS, oneOfLabel, type MetricDef, type MetricKey } from '../../protocol/metrics.js';

const defOf = (k: MetricKey): MetricDef => METRICS[k];
import { seriesKey, type Labels, type SampleOp } from '../samples.js';
import type { Output } from './output.js';
import { createMetric } from '../../protocol/prom.js';
import { RESULT_METRICS } from '../store/series-store.js';
import { compress, encodeWriteRequest, REMOTE_WRITE_HEADERS, type WireMetadata, type WireSample } from './remote-write/proto.js';

export interface RemoteWriteOptions {
  /** Receiver URL, e.g. http://127.0.0.1:9090/api/v1/write. */
  url: string;
  /** Extra headers (auth, X-Scope-OrgID). */
  headers?: Readonly<Record<string, string>>;
  /** `job` label. Default mailprobe-collector. */
  job?: string;
  /** `instance` label (this replica). Default env MAILPROBE_REPLICA, else the host name. */
  instance?: string;
  /** Samples per request. Default 2000. */
  batchSize?: number;
  /** Partial batches are sent after this long. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Queue bound in samples; the oldest are dropped beyond it. Default 500000. */
  queueMaxSamples?: number;
  /** Unchanged series are sent again after this long (like a scrape interval). Default 30000 ms. */
  resendIntervalMs?: number;
  /** First retry delay. Default 200 ms. */
  retryMinMs?: number;
  /** Longest retry delay. Default 30000 ms. */
  retryMaxMs?: number;
  /** Timeout of one request. Default 10000 ms. */
  requestTimeoutMs?: number;
  /** Requests in flight at once; a series always goes through the same shard, so its samples stay in order. Default 4. */
  shards?: number;
  /** How long close() keeps trying to deliver what is queued. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Self-metrics go here (never the global registry). */
  registry: Registry;
  now?: () => number;
  log?: { warn(obj: object, msg: string): void };
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

type Pairs = (readonly [string, string])[];

interface SeriesState {
  metric: MetricKey;
  labels: Labels;
  kind: 'counter' | 'gauge' | 'histogram';
  /** Counter total or gauge value. */
  value: number;
  /** Histogram: observations per bucket (not cumulative), then sum and count. */
  buckets?: number[];
  sum: number;
  count: number;
  /** Probe time of the gauge value held. */
  valueTs: number;
  /** Timestamp of the last sample queued for this series. */
  sentTs: number;
  /** The queue (and request pipeline) the series' samples go through. */
  shard: Shard;
  /** Wire label sets: one for counters and gauges; buckets (with +Inf), _sum, _count for histograms. */
  wire: Pairs[];
}

/** One queue and one request at a time: samples of a series stay in order. */
interface Shard {
  queue: WireSample[];
  head: number;
  sending: boolean;
  idle: Promise<void>;
}

const queuedIn = (sh: Shard): number => sh.queue.length - sh.head;

/** Max age of a sample timestamp relative to now: Prometheus refuses samples 1 h behind its head. */
const MAX_SAMPLE_AGE_MS = 50 * 60_000;
const METADATA_EVERY_MS = 5 * 60_000;

export class RemoteWriteOutput implements Output {
  readonly name = 'remote-write';
  readonly #o: Required<Omit<RemoteWriteOptions, 'log' | 'headers'>> & Pick<RemoteWriteOptions, 'log' | 'headers'>;
  readonly #series = new Map<string, SeriesState>();
  /** One-of gauges: series without the exclusive label → its current value and probe time. */
  readonly #current = new Map<string, { value: string; ts: number }>();
  /**
   * Series ended with a stale marker → its time: if the series comes back (a probe replaying its
   * spool after the sweep), its samples must land after the marker, or the receiver refuses the batch.
   */
  readonly #tombstones = new Map<string, number>();
  readonly #shards: Shard[];
  #closing = false;
  #closed = false;
  #closeDeadline = Number.POSITIVE_INFINITY;
  #lastResendScan = 0;
  #metadataDue = 0;
  readonly #timer: NodeJS.Timeout;
  readonly #agent: Agent;
  /** Wakes the shards sleeping in a retry backoff (at shutdown). */
  readonly #wake = new Set<() => void>();
  readonly #m: {
    samples: Counter<'result'>;
    dropped: Counter<'reason'>;
    requests: Counter<'result'>;
    duration: Histogram<string>;
  };

  constructor(opts: RemoteWriteOptions) {
    this.#o = {
      job: COLLECTOR_JOB,
      instance: process.env.MAILPROBE_REPLICA ?? hostname(),
      batchSize: 2000,
      flushIntervalMs: 1000,
      queueMaxSamples: 500_000,
      resendIntervalMs: 30_000,
      retryMinMs: 200,
      retryMaxMs: 30_000,
      requestTimeoutMs: 10_000,
      closeTimeoutMs: 5000,
      shards: 4,
      now: Date.now,
      ...opts,
    };
    if (this.#o.resendIntervalMs >= 5 * 60_000) throw new Error('remote write: resend interval must be below 5m (the staleness window)');
    this.#shards = Array.from({ length: Math.max(1, this.#o.shards) }, () => ({ queue: [], head: 0, sending: false, idle: Promise.resolve() }));
    const r = this.#o.registry;
    const self = this;
    createMetric(METRICS.collectorRemoteWriteQueue, r, function collect(this: Gauge<string>) {
      this.set(self.queued);
    });
    this.#m = {
      samples: createMetric(METRICS.collectorRemoteWriteSamples, r) as Counter<'result'>,
      dropped: createMetric(METRICS.collectorRemoteWriteDropped, r) as Counter<'reason'>,
      requests: createMetric(METRICS.collectorRemoteWriteRequests, r) as Counter<'result'>,
      duration: createMetric(METRICS.collectorRemoteWriteDuration, r) as Histogram<string>,
    };
    this.#agent = new Agent({ connections: 4, keepAliveTimeout: 30_000, headersTimeout: this.#o.requestTimeoutMs, bodyTimeout: this.#o.requestTimeoutMs });
    this.#timer = setInterval(() => this.#tick(), this.#o.flushIntervalMs);
    this.#timer.unref();
  }

  /** Samples waiting to be sent. */
  get queued(): number {
    let n = 0;
    for (const sh of this.#shards) n += queuedIn(sh);
    return n;
  }

  /** Series currently held (each is resent until removed). */
  get seriesCount(): number {
    return this.#series.size;
  }

  apply(ops: readonly SampleOp[]): void {
    if (this.#closing) return;
    const now = this.#o.now();
    // Several results of one series in a batch become one sample with the newest time.
    const dirty = new Map<SeriesState, number>();
    const mark = (st: SeriesState, ts: number) => dirty.set(st, Math.max(dirty.get(st) ?? ts, ts));
    for (const op of ops) {
      const def = defOf(op.metric);
      switch (op.op) {
        case 'inc': {
          const st = this.#state(op.metric, op.labels, 'counter');
          st.value += op.value;
          mark(st, op.ts);
          break;
        }
        case 'observe': {
          const st = this.#state(op.metric, op.labels, 'histogram');
          const bounds = def.buckets ?? [];
          let i = 0;
          while (i < bounds.length && op.value > (bounds[i] ?? Number.POSITIVE_INFINITY)) i++;
          if (st.buckets) st.buckets[i] = (st.buckets[i] ?? 0) + 1;
          st.sum += op.value;
          st.count += 1;
          mark(st, op.ts);
          break;
        }
        case 'set': {
          const st = this.#state(op.metric, op.labels, 'gauge');
          // An older result (a spool replay) never overwrites a newer value.
          if (op.ts < st.valueTs) break;
          st.value = op.value;
          st.valueTs = op.ts;
          mark(st, op.ts);
          break;
        }
        case 'one-of': {
          const key = seriesKey(op.metric, op.labels, [op.label, '']);
          const cur = this.#current.get(key);
          if (cur && op.ts < cur.ts) break;
          if (cur && cur.value !== op.value) {
            const prev = this.#series.get(seriesKey(op.metric, { ...op.labels, [op.label]: cur.value }));
            if (prev) {
              dirty.delete(prev);
              this.#stale(prev, Math.max(op.ts, now - MAX_SAMPLE_AGE_MS));
            }
          }
          const st = this.#state(op.metric, { ...op.labels, [op.label]: op.value }, 'gauge');
          st.value = 1;
          st.valueTs = op.ts;
          this.#current.set(key, { value: op.value, ts: op.ts });
          mark(st, op.ts);
          break;
        }
      }
    }
    for (const [st, ts] of dirty) this.#emit(st, ts, now);
    for (const sh of this.#shards) if (queuedIn(sh) >= this.#o.batchSize) this.#kick(sh, false);
  }

  remove(metric: MetricKey, labels: Labels): void {
    const st = this.#series.get(seriesKey(metric, labels));
    if (st) this.#stale(st, this.#o.now());
    const exclusive = oneOfLabel(metric);
    if (exclusive) this.#current.delete(seriesKey(metric, labels, [exclusive, '']));
  }

  /** Sends everything queued now (tests, shutdown); resolves when the queue is empty or sending gave up. */
  async flush(): Promise<void> {
    await this.#drainAll();
  }

  /** Sends what every shard holds; a second round catches what arrived during the first. */
  async #drainAll(): Promise<void> {
    for (let round = 0; round < 2 && !this.#closed; round++) {
      this.#kickAll();
      // Also waits for requests already in flight.
      await Promise.all(this.#shards.map((sh) => sh.idle));
      if (this.queued === 0) break;
    }
  }

  #kickAll(): void {
    for (const sh of this.#shards) this.#kick(sh, true);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#timer);
    const now = this.#o.now();
    for (const st of [...this.#series.values()]) this.#stale(st, now);
    this.#closeDeadline = Date.now() + this.#o.closeTimeoutMs;
    for (const wake of this.#wake) wake();
    await this.#drainAll();
    this.#closed = true;
    const left = this.queued;
    if (left > 0) this.#m.dropped.inc({ reason: 'shutdown' }, left);
    for (const sh of this.#shards) {
      sh.queue = [];
      sh.head = 0;
    }
    await this.#agent.close();
  }

  #state(metric: MetricKey, labels: Labels, kind: SeriesState['kind']): SeriesState {
    const key = seriesKey(metric, labels);
    let st = this.#series.get(key);
    if (!st) {
      const ended = this.#tombstones.get(key);
      if (ended !== undefined) this.#tombstones.delete(key);
      st = {
        metric,
        labels: { ...labels },
        kind,
        value: 0,
        sum: 0,
        count: 0,
        valueTs: Number.NEGATIVE_INFINITY,
        sentTs: ended ?? Number.NEGATIVE_INFINITY,
        wire: this.#wireLabels(metric, labels, kind),
        shard: this.#shards[hash(key) % this.#shards.length] as Shard,
      };
      if (kind === 'histogram') st.buckets = new Array<number>((defOf(metric).buckets?.length ?? 0) + 1).fill(0);
      this.#series.set(key, st);
    }
    return st;
  }

  #wireLabels(metric: MetricKey, labels: Labels, kind: SeriesState['kind']): Pairs[] {
    const def = defOf(metric);
    const base: Pairs = [
      ['job', this.#o.job],
      ['instance', this.#o.instance],
    ];
    for (const n of def.labels) {
      const v = labels[n];
      // Prometheus treats an empty label as absent; the scrape drops it the same way.
      if (v !== undefined && v !== '') base.push([n, v]);
    }
    const withName = (name: string, extra?: readonly [string, string]): Pairs =>
      [['__name__', name] as const, ...base, ...(extra ? [extra] : [])].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (kind !== 'histogram') return [withName(def.name)];
    const bounds = [...(def.buckets ?? []).map((b) => String(b)), '+Inf'];
    return [...bounds.map((le) => withName(`${def.name}_bucket`, ['le', le])), withName(`${def.name}_sum`), withName(`${def.name}_count`)];
  }

  /** Queues the current value(s) of a series at `ts` (moved into the allowed, increasing range). */
  #emit(st: SeriesState, ts: number, now: number): void {
    const t = Math.max(Math.min(Math.max(ts, now - MAX_SAMPLE_AGE_MS), now), st.sentTs + 1);
    st.sentTs = t;
    if (st.kind !== 'histogram') {
      this.#push(st.shard, { labels: st.wire[0] ?? [], value: st.value, ts: t });
      return;
    }
    const counts = st.buckets ?? [];
    let cumulative = 0;
    for (let i = 0; i < counts.length; i++) {
      cumulative += counts[i] ?? 0;
      this.#push(st.shard, { labels: st.wire[i] ?? [], value: cumulative, ts: t });
    }
    this.#push(st.shard, { labels: st.wire[counts.length] ?? [], value: st.sum, ts: t });
    this.#push(st.shard, { labels: st.wire[counts.length + 1] ?? [], value: st.count, ts: t });
  }

  /** Queues stale markers for every wire series of `st` and forgets it. */
  #stale(st: SeriesState, ts: number): void {
    const t = Math.max(ts, st.sentTs + 1);
    for (const labels of st.wire) this.#push(st.shard, { labels, value: Number.NaN, ts: t });
    const key = seriesKey(st.metric, st.labels);
    this.#series.delete(key);
    if (!this.#closing) this.#tombstones.set(key, t);
  }

  #push(sh: Shard, s: WireSample): void {
    sh.queue.push(s);
    const over = queuedIn(sh) - Math.ceil(this.#o.queueMaxSamples / this.#shards.length);
    if (over > 0) {
      // The newest samples carry the current state (counters are cumulative): drop the oldest.
      sh.head += over;
      this.#m.dropped.inc({ reason: 'queue_full' }, over);
      compact(sh);
    }
  }

  #tick(): void {
    const now = this.#o.now();
    // Scan often enough that no series waits much past resend_interval.
    if (now - this.#lastResendScan >= Math.min(this.#o.resendIntervalMs / 4, 15_000)) {
      this.#lastResendScan = now;
      const due = now - this.#o.resendIntervalMs;
      for (const st of this.#series.values()) if (st.sentTs <= due) this.#emit(st, now, now);
      // Older markers need no guard: new samples are never sent more than MAX_SAMPLE_AGE_MS back.
      for (const [key, t] of this.#tombstones) if (t < now - MAX_SAMPLE_AGE_MS) this.#tombstones.delete(key);
    }
    this.#kickAll();
  }

  #kick(sh: Shard, partial: boolean): void {
    if (sh.sending || this.#closed) return;
    if (queuedIn(sh) === 0 || (!partial && queuedIn(sh) < this.#o.batchSize)) return;
    sh.sending = true;
    sh.idle = this.#drain(sh, partial).finally(() => {
      sh.sending = false;
    });
  }

  async #drain(sh: Shard, partial: boolean): Promise<void> {
    while (queuedIn(sh) > 0 && (partial || queuedIn(sh) >= this.#o.batchSize)) {
      const batch = take(sh, this.#o.batchSize);
      const delivered = await this.#send(batch);
      if (!delivered) {
        // Gave up at shutdown: what is left is counted by close().
        this.#m.dropped.inc({ reason: 'shutdown' }, batch.length);
        return;
      }
    }
  }

  /** Sends one batch until it is accepted or rejected (true), or shutdown gives up (false). */
  async #send(batch: WireSample[]): Promise<boolean> {
    let metadata: WireMetadata[] = [];
    if (this.#o.now() >= this.#metadataDue) {
      this.#metadataDue = this.#o.now() + METADATA_EVERY_MS;
      metadata = RESULT_METRICS.map((k) => ({ type: METRICS[k].type, name: METRICS[k].name, help: METRICS[k].help }));
    }
    const body = compress(encodeWriteRequest(batch, metadata));
    let failures = 0;
    let warned = false;
    for (;;) {
      const started = process.hrtime.bigint();
      let status = 0;
      let detail = '';
      try {
        const r = await request(this.#o.url, {
          method: 'POST',
          dispatcher: this.#agent,
          headers: { ...this.#o.headers, ...REMOTE_WRITE_HEADERS },
          body,
          signal: AbortSignal.timeout(this.#o.requestTimeoutMs),
        });
        status = r.statusCode;
        detail = status >= 300 ? (await r.body.text()).slice(0, 300) : '';
        if (status < 300) await r.body.dump();
      } catch (err) {
        detail = (err as Error).message;
      }
      this.#m.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      if (status >= 200 && status < 300) {
        this.#m.requests.inc({ result: 'success' });
        this.#m.samples.inc({ result: 'sent' }, batch.length);
        return true;
      }
      if (status >= 400 && status < 500 && status !== 429) {
        // The receiver will never take this batch (out of order, out of bounds, bad labels).
        this.#m.requests.inc({ result: 'rejected' });
        this.#m.samples.inc({ result: 'rejected' }, batch.length);
        this.#o.log?.warn({ status, detail, samples: batch.length }, 'remote write rejected a batch');
        return true;
      }
      this.#m.requests.inc({ result: 'retried' });
      if (!warned) {
        warned = true;
        this.#o.log?.warn({ status: status || undefined, detail }, 'remote write failed, retrying');
      }
      const delay = backoff(++failures, this.#o.retryMinMs, this.#o.retryMaxMs);
      if (this.#closing && Date.now() + delay > this.#closeDeadline) return false;
      await new Promise<void>((res) => {
        const wake = () => {
          clearTimeout(t);
          this.#wake.delete(wake);
          res();
        };
        const t = setTimeout(wake, delay);
        this.#wake.add(wake);
      });
    }
  }
}

function compact(sh: Shard): void {
  if (sh.head > 4096 && sh.head * 2 > sh.queue.length) {
    sh.queue = sh.queue.slice(sh.head);
    sh.head = 0;
  }
}

function take(sh: Shard, n: number): WireSample[] {
  const batch = sh.queue.slice(sh.head, sh.head + n);
  sh.head += batch.length;
  compact(sh);
  if (sh.head === sh.queue.length) {
    sh.queue = [];
    sh.head = 0;
  }
  return batch;
}

/** FNV-1a of a series key: spreads series over shards, stable for the life of the process. */
function hash(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return h >>> 0;
}
