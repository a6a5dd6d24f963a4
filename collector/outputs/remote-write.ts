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
 * - Remote write needs cumulative values: it reads them from the collector's series store
 *   (collector/store/series-store.ts: the counter total, the histogram buckets/sum/count, the
 *   last gauge value), the same state /metrics renders; per series it adds only the time of the
 *   last sample it queued. Wire labels are built when a sample is queued, not kept, and the
 *   queue holds each sample as the protobuf bytes it is sent as (remote-write/transport.ts). It
 *   keeps no per-result or per-batch state and no state shared between replicas.
 * - HA pair (probes push every batch to every collector): each replica sees every result, so its
 *   series equal the other's but for `instance`; `max without (instance)` picks one. Losing a
 *   replica leaves the other's series (no gap).
 * - Scale-out behind a load balancer (each batch reaches one replica): route by probe (hash on the
 *   Authorization header or session affinity) so one replica owns a probe's series; then
 *   `max without (instance)` still holds for per-probe series. Without affinity, counters are split
 *   across replicas and must be summed (`sum without (instance)`), which the shipped rules do not do.
 *   After a re-balance the old replica stops resending a probe's gauges once the probe has been
 *   silent there for collector.probe_stale_after (stale markers from the sweep).
 * - Gauges: a value older (by probe time) than the one already held is ignored (by the store), so
 *   the latest check wins even when batches arrive out of order (spool replays). Every series (gauge, counter,
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
import { METRICS, type MetricKey } from '../../protocol/metrics.js';
import type { Labels, SampleOps } from '../samples.js';
import { type Family, parseBody, RESULT_METRICS, type Series, SeriesStore, type StoreListener } from '../store/series-store.js';
import type { Output } from './output.js';
import { resolveOptions, type RemoteWriteOptions, type ResolvedOptions } from './remote-write/options.js';
import type { WireSample } from './remote-write/proto.js';
import { Transport } from './remote-write/transport.js';

export { remoteWriteOptionsFromPlan, type RemoteWriteOptions } from './remote-write/options.js';

type Pair = readonly [string, string];

/** Max age of a sample timestamp relative to now: Prometheus refuses samples 1 h behind its head. */
const MAX_SAMPLE_AGE_MS = 50 * 60_000;

const byName = (a: Pair, b: Pair) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

export class RemoteWriteOutput implements Output, StoreListener {
  readonly name = 'remote-write';
  readonly #o: ResolvedOptions;
  readonly #store: SeriesStore;
  /** The store is this output's own (standalone use): `apply` and `remove` feed it. */
  readonly #ownStore: boolean;
  readonly #transport: Transport;
  /** Series changed by the operations being applied → the newest probe time among them. */
  #dirty = new Map<Series, number>();
  /**
   * Series ended with a stale marker (metric + label body) → its time: if the series comes back
   * (a probe replaying its spool after the sweep), its samples must land after the marker, or the
   * receiver refuses the batch.
   */
  readonly #tombstones = new Map<string, number>();
  #closing = false;
  #lastResendScan = 0;
  readonly #timer: NodeJS.Timeout;
  readonly #tuples = new Map<Family, { name: Pair; bucket: Pair; sum: Pair; count: Pair; les: Pair[] }>();
  readonly #job: Pair;
  readonly #instance: Pair;

  /** `store`: the collector's series store, which it applies operations to; default a store of its own. */
  constructor(opts: RemoteWriteOptions & { store?: SeriesStore }) {
    const { store, ...rest } = opts;
    this.#o = resolveOptions(rest);
    if (this.#o.resendIntervalMs >= 5 * 60_000) throw new Error('remote write: resend interval must be below 5m (the staleness window)');
    this.#job = ['job', this.#o.job];
    this.#instance = ['instance', this.#o.instance];
    this.#store = store ?? new SeriesStore();
    this.#ownStore = store === undefined;
    this.#store.listen(this);
    this.#transport = new Transport({
      ...this.#o,
      headers: this.#o.headers,
      log: this.#o.log,
      metadata: () => RESULT_METRICS.map((k) => ({ type: METRICS[k].type, name: METRICS[k].name, help: METRICS[k].help })),
    });
    this.#timer = setInterval(() => this.#tick(), this.#o.flushIntervalMs);
    this.#timer.unref();
  }

  /** Samples waiting to be sent. */
  get queued(): number {
    return this.#transport.queued;
  }

  /** Series currently held (each is resent until removed). */
  get seriesCount(): number {
    return this.#store.size;
  }

  /** Standalone: applies to its own store. Sharing the collector's store (applied before): sends what changed. */
  apply(ops: SampleOps): void {
    if (this.#ownStore) this.#store.apply(ops);
    else this.applied();
  }

  remove(metric: MetricKey, labels: Labels): void {
    if (this.#ownStore) this.#store.remove(metric, labels);
  }

  changed(s: Series, ts: number): void {
    if (this.#closing) return;
    if (s.sentTs === Number.NEGATIVE_INFINITY && this.#tombstones.size > 0) {
      const key = keyOf(s);
      const ended = this.#tombstones.get(key);
      if (ended !== undefined) {
        this.#tombstones.delete(key);
        s.sentTs = ended;
      }
    }
    // Several results of one series in a batch become one sample with the newest time.
    const t = this.#dirty.get(s);
    this.#dirty.set(s, t === undefined ? ts : Math.max(t, ts));
  }

  removed(s: Series, ts: number | undefined): void {
    if (this.#closing) return;
    this.#dirty.delete(s);
    const now = this.#o.now();
    this.#stale(s, ts === undefined ? now : Math.max(ts, now - MAX_SAMPLE_AGE_MS));
  }

  applied(): void {
    if (this.#closing || this.#dirty.size === 0) return;
    const now = this.#o.now();
    const dirty = this.#dirty;
    this.#dirty = new Map();
    for (const [s, ts] of dirty) this.#emit(s, ts, now);
    this.#transport.kickAll(false);
  }

  /** Sends everything queued now (tests, shutdown); resolves when the queue is empty or sending gave up. */
  async flush(): Promise<void> {
    await this.#transport.drainAll();
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    clearInterval(this.#timer);
    const now = this.#o.now();
    // A replica leaving, like a target no longer scraped: every series ends with a stale marker.
    for (const f of this.#store.families()) for (const s of f.series.values()) this.#stale(s, now);
    this.#closing = true;
    await this.#transport.close();
  }

  /** The shard of a series: by its key, stable for the life of the process. */
  #shardOf(s: Series): number {
    return hash(s.body, hash(s.family.key)) % this.#transport.shardCount;
  }

  /** The label pairs a family's wire series share (name, bucket bounds), made once per family. */
  #shared(f: Family): { name: Pair; bucket: Pair; sum: Pair; count: Pair; les: Pair[] } {
    let t = this.#tuples.get(f);
    if (!t) {
      t = {
        name: ['__name__', f.name],
        bucket: ['__name__', `${f.name}_bucket`],
        sum: ['__name__', `${f.name}_sum`],
        count: ['__name__', `${f.name}_count`],
        les: [...(f.bounds ?? []).map((b) => String(b)), '+Inf'].map((le): Pair => ['le', le]),
      };
      this.#tuples.set(f, t);
    }
    return t;
  }

  /**
   * Wire label sets, sorted by name: one for counters and gauges; buckets (with +Inf), _sum,
   * _count for histograms. Built when a sample is queued; the pairs a family shares are shared.
   */
  #wire(s: Series): Pair[][] {
    const f = s.family;
    const t = this.#shared(f);
    const base: Pair[] = [this.#job, this.#instance];
    const labels = parseBody(s.body);
    for (const n of f.labelNames) {
      const v = labels[n];
      // Prometheus treats an empty label as absent; the scrape drops it the same way.
      if (v !== undefined && v !== '') base.push([n, v]);
    }
    base.sort(byName);
    // `__name__` sorts before every label name (they are lower case).
    if (!f.bounds) return [[t.name, ...base]];
    let at = base.findIndex((p) => p[0] > 'le');
    if (at < 0) at = base.length;
    const before = base.slice(0, at);
    const after = base.slice(at);
    return [...t.les.map((le) => [t.bucket, ...before, le, ...after]), [t.sum, ...base], [t.count, ...base]];
  }

  /** Queues the current value(s) of a series at `ts` (moved into the allowed, increasing range). */
  #emit(s: Series, ts: number, now: number): void {
    const t = Math.max(Math.min(Math.max(ts, now - MAX_SAMPLE_AGE_MS), now), s.sentTs + 1);
    s.sentTs = t;
    const shard = this.#shardOf(s);
    const wire = this.#wire(s);
    if (!s.buckets) {
      this.#push(shard, { labels: wire[0] ?? [], value: s.value, ts: t });
      return;
    }
    const counts = s.buckets;
    let cumulative = 0;
    for (let i = 0; i < counts.length; i++) {
      cumulative += counts[i] ?? 0;
      this.#push(shard, { labels: wire[i] ?? [], value: cumulative, ts: t });
    }
    this.#push(shard, { labels: wire[counts.length] ?? [], value: s.sum, ts: t });
    this.#push(shard, { labels: wire[counts.length + 1] ?? [], value: s.count, ts: t });
  }

  /** Queues stale markers for every wire series of `s` and remembers when it ended. */
  #stale(s: Series, ts: number): void {
    const t = Math.max(ts, s.sentTs + 1);
    const shard = this.#shardOf(s);
    for (const labels of this.#wire(s)) this.#push(shard, { labels, value: Number.NaN, ts: t });
    s.sentTs = t;
    if (!this.#closing) this.#tombstones.set(keyOf(s), t);
  }

  #push(shard: number, sample: WireSample): void {
    this.#transport.push(shard, sample);
  }

  #tick(): void {
    const now = this.#o.now();
    // Scan often enough that no series waits much past resend_interval.
    if (now - this.#lastResendScan >= Math.min(this.#o.resendIntervalMs / 4, 15_000)) {
      this.#lastResendScan = now;
      const due = now - this.#o.resendIntervalMs;
      for (const f of this.#store.families()) for (const s of f.series.values()) if (s.sentTs <= due) this.#emit(s, now, now);
      // Older markers need no guard: new samples are never sent more than MAX_SAMPLE_AGE_MS back.
      for (const [key, t] of this.#tombstones) if (t < now - MAX_SAMPLE_AGE_MS) this.#tombstones.delete(key);
    }
    this.#transport.kickAll(true);
  }
}

/** A series' key across families: metric key and label body. */
const keyOf = (s: Series): string => `${s.family.key}\u0000${s.body}`;

/** FNV-1a (continuing from `h`): spreads series over shards, stable for the life of the process. */
function hash(key: string, h = 2166136261): number {
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return h >>> 0;
}
