/**
 * Remote write's transport: samples queued per shard (a series always goes through the same
 * shard, so its samples stay in order), sent as remote-write 1.0 requests (proto.ts) one request
 * per shard at a time, retried with the house backoff (protocol/backoff.ts) on 5xx, 429 and network errors, dropped
 * and counted on other 4xx (the receiver will never take them), the oldest dropped and counted
 * when a shard's queue is full. It knows nothing of series: collector/outputs/remote-write.ts
 * decides what to send, from the series store.
 */
import type { Gauge, Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { backoff } from '../../../protocol/backoff.js';
import { METRICS } from '../../../protocol/metrics.js';
import { createMetric } from '../../../protocol/prom.js';
import { compress, encodeWriteRequest, REMOTE_WRITE_HEADERS, type WireMetadata, type WireSample } from './proto.js';

export interface TransportOptions {
  url: string;
  headers?: Readonly<Record<string, string>> | undefined;
  batchSize: number;
  queueMaxSamples: number;
  retryMinMs: number;
  retryMaxMs: number;
  requestTimeoutMs: number;
  shards: number;
  closeTimeoutMs: number;
  registry: Registry;
  now: () => number;
  /** The metadata sent with the first request and every 5 minutes after. */
  metadata: () => WireMetadata[];
  log?: { warn(obj: object, msg: string): void } | undefined;
}

/** One queue and one request at a time: samples of a series stay in order. */
interface Shard {
  queue: WireSample[];
  head: number;
  sending: boolean;
  idle: Promise<void>;
}

const queuedIn = (sh: Shard): number => sh.queue.length - sh.head;
const METADATA_EVERY_MS = 5 * 60_000;

export class Transport {
  readonly #o: TransportOptions;
  readonly #shards: Shard[];
  readonly #agent: Agent;
  /** Wakes the shards sleeping in a retry backoff (at shutdown). */
  readonly #wake = new Set<() => void>();
  #metadataDue = 0;
  #closing = false;
  #closed = false;
  #closeDeadline = Number.POSITIVE_INFINITY;
  readonly #m;

  constructor(o: TransportOptions) {
    this.#o = o;
    this.#shards = Array.from({ length: Math.max(1, o.shards) }, () => ({ queue: [], head: 0, sending: false, idle: Promise.resolve() }));
    const self = this;
    createMetric(METRICS.collectorRemoteWriteQueue, o.registry, function collect(this: Gauge<string>) {
      this.set(self.queued);
    });
    this.#m = {
      samples: createMetric(METRICS.collectorRemoteWriteSamples, o.registry),
      dropped: createMetric(METRICS.collectorRemoteWriteDropped, o.registry),
      requests: createMetric(METRICS.collectorRemoteWriteRequests, o.registry),
      duration: createMetric(METRICS.collectorRemoteWriteDuration, o.registry),
    };
    this.#agent = new Agent({ connections: 4, keepAliveTimeout: 30_000, headersTimeout: o.requestTimeoutMs, bodyTimeout: o.requestTimeoutMs });
  }

  get shardCount(): number {
    return this.#shards.length;
  }

  /** Samples waiting to be sent. */
  get queued(): number {
    let n = 0;
    for (const sh of this.#shards) n += queuedIn(sh);
    return n;
  }

  /** Queues one sample on shard `i`; past the shard's share of the bound the oldest go. */
  push(i: number, s: WireSample): void {
    const sh = this.#shards[i] as Shard;
    sh.queue.push(s);
    const over = queuedIn(sh) - Math.ceil(this.#o.queueMaxSamples / this.#shards.length);
    if (over > 0) {
      // The newest samples carry the current state (counters are cumulative): drop the oldest.
      sh.head += over;
      this.#m.dropped.inc({ reason: 'queue_full' }, over);
      compact(sh);
    }
  }

  /** Starts a request on every shard holding a full batch (`partial`: holding anything). */
  kickAll(partial: boolean): void {
    for (const sh of this.#shards) this.#kick(sh, partial);
  }

  /** Sends what every shard holds; a second round catches what arrived during the first. */
  async drainAll(): Promise<void> {
    for (let round = 0; round < 2 && !this.#closed; round++) {
      this.kickAll(true);
      // Also waits for requests already in flight.
      await Promise.all(this.#shards.map((sh) => sh.idle));
      if (this.queued === 0) break;
    }
  }

  /** Delivers what is queued within closeTimeoutMs, counts the rest as dropped, closes the connections. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#closeDeadline = Date.now() + this.#o.closeTimeoutMs;
    for (const wake of this.#wake) wake();
    await this.drainAll();
    this.#closed = true;
    const left = this.queued;
    if (left > 0) this.#m.dropped.inc({ reason: 'shutdown' }, left);
    for (const sh of this.#shards) {
      sh.queue = [];
      sh.head = 0;
    }
    await this.#agent.close();
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
      metadata = this.#o.metadata();
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
