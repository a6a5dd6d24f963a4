/**
 * Applies validated batches: once per batch id, within each probe's series budget, with label
 * values bounded, to every output. Also removes the gauges of probes that went silent.
 */
import { METRICS, type MetricKey } from '../protocol/metrics.js';
import type { Batch, PushReply } from '../protocol/wire.js';
import { BatchDedup } from './dedup.js';
import { CollectorError } from './errors.js';
import type { Output } from './outputs/output.js';
import { resultOps, seriesKey, type Labels, type SampleOp } from './samples.js';
import type { SelfMetrics } from './self-metrics.js';

export interface IngestOptions {
  maxSeriesPerProbe: number;
  maxLabelLength: number;
  dedupBatches: number;
  probeStaleAfterMs: number;
}

interface ProbeState {
  region: string;
  lastSeen: number;
  /** Its per-probe gauges were removed after silence (until it pushes again). */
  swept: boolean;
  /** series key → the labels to remove it with (for one-of gauges, with the current value). */
  series: Map<string, { metric: MetricKey; labels: Labels }>;
}

export class Ingest {
  readonly #dedup: BatchDedup;
  readonly #probes = new Map<string, ProbeState>();

  constructor(
    readonly opts: IngestOptions,
    readonly outputs: readonly Output[],
    readonly self: SelfMetrics,
    readonly now: () => number = Date.now,
  ) {
    this.#dedup = new BatchDedup(opts.dedupBatches);
  }

  #bound(labels: Labels): Labels {
    const max = this.opts.maxLabelLength;
    for (const k in labels) {
      const v = labels[k] ?? '';
      if (v.length > max) labels[k] = v.slice(0, max);
    }
    return labels;
  }

  /** Applies a batch already validated against the wire schema and bound to `probeId`. */
  apply(probeId: string, batch: Batch): PushReply {
    const started = process.hrtime.bigint();
    const dedupKey = `${probeId}\u0000${batch.batch.id}`;
    if (this.#dedup.has(dedupKey)) {
      this.self.batches.inc({ result: 'duplicate' });
      return { status: 'duplicate', results: batch.results.length };
    }
    const probe = { id: probeId, region: batch.probe.region };
    const ops: SampleOp[] = [];
    for (const r of batch.results) for (const op of resultOps(probe, r)) ops.push(op);
    for (const op of ops) {
      this.#bound(op.labels);
      if (op.op === 'one-of') op.value = op.value.slice(0, this.opts.maxLabelLength);
    }

    const state = this.#probes.get(probeId) ?? { region: probe.region, lastSeen: 0, swept: false, series: new Map() };
    // Count before applying anything, so a rejected batch leaves no trace.
    const fresh = new Map<string, { metric: MetricKey; labels: Labels }>();
    for (const op of ops) {
      const key = op.op === 'one-of' ? seriesKey(op.metric, op.labels, [op.label, '']) : seriesKey(op.metric, op.labels);
      const labels = op.op === 'one-of' ? { ...op.labels, [op.label]: op.value } : op.labels;
      if (state.series.has(key)) state.series.set(key, { metric: op.metric, labels });
      else fresh.set(key, { metric: op.metric, labels });
    }
    if (state.series.size + fresh.size > this.opts.maxSeriesPerProbe) {
      this.self.batches.inc({ result: 'rejected' });
      throw new CollectorError(
        'series_limit',
        `probe ${probeId} has ${state.series.size} series, this batch adds ${fresh.size}, the limit is ${this.opts.maxSeriesPerProbe}`,
      );
    }
    for (const [k, v] of fresh) state.series.set(k, v);
    state.region = probe.region;
    state.lastSeen = this.now();
    state.swept = false;
    this.#probes.set(probeId, state);

    const info = { ...batch.probe, ...probe };
    for (const out of this.outputs) {
      out.apply(ops);
      out.results?.(info, batch.results);
    }
    this.#dedup.add(dedupKey, batch.results.length);

    const rp = { region: probe.region, probe: probeId };
    this.self.lastPush.set(rp, state.lastSeen / 1000);
    if (batch.probe.spool) {
      this.self.spoolBytes.set(rp, batch.probe.spool.bytes);
      this.self.spoolDropped.set(rp, batch.probe.spool.dropped);
    }
    this.self.series.set({ probe: probeId }, state.series.size);
    this.self.batches.inc({ result: 'accepted' });
    this.self.results.inc(batch.results.length);
    this.self.ingestDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return { status: 'accepted', results: batch.results.length };
  }

  /** Removes per-probe gauges of probes silent longer than probeStaleAfterMs; returns their ids. */
  sweep(): string[] {
    const cutoff = this.now() - this.opts.probeStaleAfterMs;
    const gone: string[] = [];
    for (const [id, state] of this.#probes) {
      if (state.swept || state.lastSeen > cutoff) continue;
      state.swept = true;
      for (const [key, { metric, labels }] of state.series) {
        const def = METRICS[metric];
        if (def.type === 'gauge' && 'perProbe' in def && def.perProbe) {
          for (const out of this.outputs) out.remove(metric, labels);
          state.series.delete(key);
        }
      }
      this.self.series.set({ probe: id }, state.series.size);
      gone.push(id);
    }
    return gone;
  }

  probeIds(): string[] {
    return [...this.#probes.keys()];
  }
}
