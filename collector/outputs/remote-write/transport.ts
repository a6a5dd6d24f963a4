/**
 * Remote write's transport: samples queued per shard (a series always goes through the same
 * shard, so its samples stay in order), sent as remote-write 1.0 requests (proto.ts) one request
 * per shard at a time, retried with the house backoff (protocol/backoff.ts) on 5xx, 429 and network errors, dropped
 * and counted on other 4xx (the receiver will never take them), the oldest dropped and counted
 * when a shard's queue is full. It knows nothing of series: collector/outputs/remote-write.ts
 * decides what to send, from the series store.
 *
 * The queue holds samples as the bytes they are sent as (encodeTimeSeries: a WriteRequest is its
 * `timeseries` fields one after another), in chunks of CHUNK_BYTES, not as objects: a burst of
 * pushes queues hundreds of thousands of samples at once, and as objects they outlived the young
 * generation and grew V8's old space, whose pages it kept after they were sent. The chunks are
 * large enough to be mmapped by malloc (config/node-runtime.ts) and go back to the system
 * once sent.
 */
import type { Gauge, Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { backoff } from '../../../protocol/backoff.js';
import { METRICS } from '../../../protocol/metrics.js';
import { createMetric } from '../../../protocol/prom.js';
import { compress, encodeTimeSeries, maxTimeSeriesLength, REMOTE_WRITE_HEADERS, type WireMetadata, type WireSample, writeRequestOf } from './proto.js';

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

/** Encoded samples: `ends[i]` is where sample i's bytes end in `buf` (they start where i - 1's end). */
interface Chunk {
  buf: Buffer;
  ends: number[];
}

/** One queue and one request at a time: samples of a series stay in order. */
interface Shard {
  chunks: Chunk[];
  /** Samples of chunks[0] already sent or dropped. */
  head: number;
  queued: number;
  sending: boolean;
  idle: Promise<void>;
}

/** An encoded batch taken from a shard's queue. */
interface Batch {
  bytes: Buffer;
  samples: number;
}

const queuedIn = (sh: Shard): number => sh.queued;
const METADATA_EVERY_MS = 5 * 60_000;
/** Bytes of one queue chunk (~1 000 samples): above malloc's mmap threshold, so a sent chunk's memory goes back. */
const CHUNK_BYTES = 256 * 1024;

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
    this.#shards = Array.from({ length: Math.max(1, o.shards) }, () => ({ chunks: [], head: 0, queued: 0, sending: false, idle: Promise.resolve() }));
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
    append(sh, s);
    const over = queuedIn(sh) - Math.ceil(this.#o.queueMaxSamples / this.#shards.length);
    if (over > 0) {
      // The newest samples carry the current state (counters are cumulative): drop the oldest.
      drop(sh, over);
      this.#m.dropped.inc({ reason: 'queue_full' }, over);
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
    for (const sh of this.#shards) drop(sh, sh.queued);
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
        this.#m.dropped.inc({ reason: 'shutdown' }, batch.samples);
        return;
      }
    }
  }

  /** Sends one batch until it is accepted or rejected (true), or shutdown gives up (false). */
  async #send(batch: Batch): Promise<boolean> {
    let metadata: WireMetadata[] = [];
    if (this.#o.now() >= this.#metadataDue) {
      this.#metadataDue = this.#o.now() + METADATA_EVERY_MS;
      metadata = this.#o.metadata();
    }
    const body = compress(writeRequestOf(batch.bytes, metadata));
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
        this.#m.samples.inc({ result: 'sent' }, batch.samples);
        return true;
      }
      if (status >= 400 && status < 500 && status !== 429) {
        // The receiver will never take this batch (out of order, out of bounds, bad labels).
        this.#m.requests.inc({ result: 'rejected' });
        this.#m.samples.inc({ result: 'rejected' }, batch.samples);
        this.#o.log?.warn({ status, detail, samples: batch.samples }, 'remote write rejected a batch');
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

/** Encodes one sample at the end of the shard's queue. */
function append(sh: Shard, s: WireSample): void {
  const room = maxTimeSeriesLength(s);
  let tail = sh.chunks.at(-1);
  let at = tail?.ends.at(-1) ?? 0;
  if (!tail || at + room > tail.buf.length) {
    tail = { buf: Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, room)), ends: [] };
    sh.chunks.push(tail);
    at = 0;
  }
  tail.ends.push(encodeTimeSeries(tail.buf, at, s));
  sh.queued++;
}

/** Forgets the oldest `n` samples of the shard's queue. */
function drop(sh: Shard, n: number): void {
  sh.queued -= n;
  sh.head += n;
  for (let c = sh.chunks[0]; c && sh.head >= c.ends.length; c = sh.chunks[0]) {
    sh.head -= c.ends.length;
    sh.chunks.shift();
  }
  if (sh.queued === 0) {
    sh.chunks = [];
    sh.head = 0;
  }
}

/** The oldest `n` samples (or fewer) as one buffer of `timeseries` fields, out of the queue. */
function take(sh: Shard, n: number): Batch {
  const parts: Buffer[] = [];
  let samples = 0;
  for (let ci = 0; samples < n && ci < sh.chunks.length; ci++) {
    const c = sh.chunks[ci] as Chunk;
    const first = ci === 0 ? sh.head : 0;
    const last = Math.min(c.ends.length, first + n - samples);
    parts.push(c.buf.subarray(first === 0 ? 0 : (c.ends[first - 1] ?? 0), c.ends[last - 1] ?? 0));
    samples += last - first;
  }
  // A copy: the chunks go back to malloc as soon as they are dropped from the queue.
  const bytes = Buffer.concat(parts);
  drop(sh, samples);
  return { bytes, samples };
}
