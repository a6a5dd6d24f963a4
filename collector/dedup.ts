/**
 * Which results of a probe were applied already, so a retried, replayed or re-sealed batch is
 * applied once — per probe, exact and bounded in bytes, and free of the collector's metric code
 * (a future series store can reuse it as it is).
 *
 * A probe numbers its results within a *stream* (its spool: a new stream id when a spool is
 * created) and a batch says the number of its first result. Per probe and stream the applied
 * numbers are kept as a sorted list of ranges [from, to); batches arrive in order, so this is
 * usually one range. Past `maxRanges` ranges the lowest range is folded into a floor (numbers
 * below it count as applied); past `maxStreams` streams the least recently used stream is
 * forgotten. Memory per probe is at most maxStreams × (maxRanges × 16 B + 80 B).
 *
 * Batches without a stream (older probes) fall back to the last `maxIds` batch ids of that
 * probe, and to no more than `maxBytes` of them (ids are free text up to 64 characters): the
 * oldest go first, and only that probe's. Empty batches are never recorded: they carry nothing to
 * apply twice.
 *
 * Nothing is recorded until `commit`: a batch refused after `select` (series limit) is refused
 * again on a retry, never answered "duplicate".
 */

export interface DedupLimits {
  /** Streams remembered per probe. */
  maxStreams: number;
  /** Ranges of applied result numbers per stream. */
  maxRanges: number;
  /** Batch ids remembered per probe for batches without a stream. */
  maxIds: number;
  /** Bytes of batch ids remembered per probe (counted as {@link idBytes}). */
  maxIdBytes: number;
}

export const DEFAULT_DEDUP_LIMITS: DedupLimits = { maxStreams: 8, maxRanges: 64, maxIds: 1000, maxIdBytes: 64 * 1024 };

/** What one remembered batch id costs, counted: its characters (two bytes each) and a map entry. */
export const idBytes = (id: string): number => 16 + id.length * 2;

/** What a batch says about its results. */
export interface BatchRef {
  id: string;
  stream?: string | undefined;
  firstResult?: number | undefined;
  count: number;
}

/** The indexes (into the batch's results) still to apply; empty → the batch is a duplicate. */
export type Selection = number[];

class Ranges {
  /** Flat [from0, to0, from1, to1, …], sorted, disjoint, not touching. */
  r: number[] = [];
  floor = 0;

  has(n: number): boolean {
    if (n < this.floor) return true;
    const r = this.r;
    let lo = 0;
    let hi = r.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const from = r[2 * mid] ?? 0;
      const to = r[2 * mid + 1] ?? 0;
      if (n < from) hi = mid - 1;
      else if (n >= to) lo = mid + 1;
      else return true;
    }
    return false;
  }

  add(from: number, to: number, maxRanges: number): void {
    if (to <= from) return;
    const r = this.r;
    const out: number[] = [];
    let i = 0;
    while (i < r.length && (r[i + 1] ?? 0) < from) {
      out.push(r[i] ?? 0, r[i + 1] ?? 0);
      i += 2;
    }
    let f = from;
    let t = to;
    while (i < r.length && (r[i] ?? 0) <= t) {
      f = Math.min(f, r[i] ?? 0);
      t = Math.max(t, r[i + 1] ?? 0);
      i += 2;
    }
    out.push(f, t);
    for (; i < r.length; i += 2) out.push(r[i] ?? 0, r[i + 1] ?? 0);
    while (out.length / 2 > maxRanges) {
      // Fold the lowest range into the floor: older numbers count as applied.
      this.floor = Math.max(this.floor, out[1] ?? 0);
      out.splice(0, 2);
    }
    this.r = out;
  }
}

class ProbeMemory {
  readonly streams = new Map<string, Ranges>();
  readonly ids = new Map<string, true>();
  idBytes = 0;
}

export class ResultDedup {
  readonly #probes = new Map<string, ProbeMemory>();
  readonly limits: DedupLimits;

  constructor(limits: Partial<DedupLimits> = {}) {
    this.limits = { ...DEFAULT_DEDUP_LIMITS, ...limits };
  }

  /** The results of the batch not applied yet (all of them for an empty or new batch). */
  select(probe: string, b: BatchRef): Selection {
    const all = Array.from({ length: b.count }, (_, i) => i);
    const mem = this.#probes.get(probe);
    if (!mem || b.count === 0) return all;
    if (b.stream !== undefined && b.firstResult !== undefined) {
      const ranges = mem.streams.get(b.stream);
      if (!ranges) return all;
      const first = b.firstResult;
      return all.filter((i) => !ranges.has(first + i));
    }
    return mem.ids.has(b.id) ? [] : all;
  }

  /** Records the batch's results as applied. */
  commit(probe: string, b: BatchRef): void {
    if (b.count === 0) return;
    let mem = this.#probes.get(probe);
    if (!mem) this.#probes.set(probe, (mem = new ProbeMemory()));
    if (b.stream !== undefined && b.firstResult !== undefined) {
      let ranges = mem.streams.get(b.stream);
      if (ranges) mem.streams.delete(b.stream);
      else ranges = new Ranges();
      // Re-inserted: the Map's order is least recently used first.
      mem.streams.set(b.stream, ranges);
      ranges.add(b.firstResult, b.firstResult + b.count, this.limits.maxRanges);
      while (mem.streams.size > this.limits.maxStreams) {
        const oldest = mem.streams.keys().next().value;
        if (oldest === undefined) break;
        mem.streams.delete(oldest);
      }
      return;
    }
    if (!mem.ids.has(b.id)) mem.idBytes += idBytes(b.id);
    mem.ids.set(b.id, true);
    while (mem.ids.size > this.limits.maxIds || (mem.idBytes > this.limits.maxIdBytes && mem.ids.size > 1)) {
      const oldest = mem.ids.keys().next().value;
      if (oldest === undefined) break;
      mem.ids.delete(oldest);
      mem.idBytes -= idBytes(oldest);
    }
  }

  /** Upper bound of the bytes held for one probe (ranges, stream ids, batch ids). */
  bytesOf(probe: string): number {
    const mem = this.#probes.get(probe);
    if (!mem) return 0;
    let bytes = 0;
    for (const [id, r] of mem.streams) bytes += 80 + id.length * 2 + r.r.length * 8;
    return bytes + mem.idBytes;
  }

  /** Most bytes one probe can hold: the bound the limits give. */
  get maxBytesPerProbe(): number {
    const { maxStreams, maxRanges, maxIds, maxIdBytes } = this.limits;
    return maxStreams * (80 + 64 * 2 + maxRanges * 2 * 8) + Math.min(maxIds * idBytes('x'.repeat(64)), maxIdBytes + idBytes('x'.repeat(64)));
  }
}
