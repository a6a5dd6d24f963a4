/**
 * Applies validated batches: each result once (per probe, see dedup.ts), within each probe's
 * series budget, only about the plan's server IPs, under the probe's bound region, with label
 * values bounded, to every output. Also removes the gauges of probes that went silent.
 */
import { METRICS, type MetricKey } from '../protocol/metrics.js';
import type { Batch, PushReply } from '../protocol/wire.js';
import { Consensus } from './consensus.js';
import { ResultDedup } from './dedup.js';
import { CollectorError } from './errors.js';
import type { Output } from './outputs/output.js';
import { oneOfAt, resultOps, SampleOps, seriesKeyAt } from './samples.js';
import { parseBody, type Family, type Series, type SeriesStore } from './store/series-store.js';
import type { SelfMetrics } from './self-metrics.js';
import { serverProblem, type ServerRef } from './servers.js';

/** Metrics without a probe label: fleet-wide verdicts the probes vote on (looked up per operation). */
const FLEET_WIDE: ReadonlySet<MetricKey> = new Set((Object.keys(METRICS) as MetricKey[]).filter((k) => !METRICS[k].labels.includes('probe' as never)));

export interface IngestOptions {
  maxSeriesPerProbe: number;
  maxLabelLength: number;
  dedupBatches: number;
  probeStaleAfterMs: number;
  /** The plan's server IPs with their sides; results about other IPs are refused. */
  servers: readonly ServerRef[];
}

/** Cuts a label value to at most `max` code points (never between the halves of a surrogate pair). */
export function cutLabel(v: string, max: number): string {
  if (v.length <= max) return v;
  let out = '';
  let n = 0;
  for (const ch of v) {
    if (n++ >= max) break;
    out += ch;
  }
  return out;
}

interface ProbeState {
  region: string;
  lastSeen: number;
  /** Its per-probe gauges were removed after silence (until it pushes again). */
  swept: boolean;
  /** The probe's series in the store (references, no copy of labels): */
  series: Set<Series>;
  /** and its one-of gauges, by family and key without the one-of label ({@link Family.keyOf}) → the series currently set. */
  groups: Map<Family, Map<string, Series>>;
}

function seriesOf(state: ProbeState): number {
  let n = state.series.size;
  for (const g of state.groups.values()) n += g.size;
  return n;
}

export class Ingest {
  readonly #dedup: ResultDedup;
  /** Fleet-wide verdicts (series without a probe label): each probe's vote, the agreed value shown. */
  readonly #numbers = new Consensus<number>();
  readonly #labels = new Consensus<string>();
  /** Series key of a fleet-wide verdict → how to set it again when a vote goes (its label values as {@link SampleOps} holds them). */
  readonly #verdicts = new Map<string, { metric: MetricKey; values: (string | undefined)[]; oneOf: boolean }>();
  /** The operations of the batch being applied: one buffer, cleared per batch (apply runs to its end before the next). */
  readonly #ops = new SampleOps();
  readonly #probes = new Map<string, ProbeState>();

  constructor(
    readonly opts: IngestOptions,
    /** The result series: the probes' series budgets and the sweep work on it; also one of `outputs`. */
    readonly store: SeriesStore,
    readonly outputs: readonly Output[],
    readonly self: SelfMetrics,
    readonly now: () => number = Date.now,
  ) {
    this.#dedup = new ResultDedup({ maxIds: opts.dedupBatches });
  }

  /** Cuts every label value of the operations (a one-of gauge's chosen value too) to maxLabelLength. */
  #bound(ops: SampleOps): void {
    const max = this.opts.maxLabelLength;
    const values = ops.labels;
    for (let i = 0; i < ops.size; i++) {
      const v = values[i];
      if (v !== undefined && v.length > max) values[i] = cutLabel(v, max);
    }
  }

  /**
   * A dry run (`POST /v1/results?dry_run=1`, the preflight): the checks of {@link apply} (region,
   * servers, batch fields) without applying anything or creating a series; counted as
   * `batches_total{result="dry_run"}`. The answer carries the collector's clock.
   */
  check(probeId: string, batch: Batch, boundRegion?: string): PushReply {
    this.#admissible(probeId, batch, boundRegion);
    this.self.batches.inc({ result: 'dry_run' });
    return { status: 'dry_run', results: batch.results.length, serverTime: this.now() };
  }

  /** Throws the {@link CollectorError} that refuses the batch, if any. */
  #admissible(probeId: string, batch: Batch, boundRegion?: string): void {
    const known = this.#probes.get(probeId);
    const expected = boundRegion ?? (known && !known.swept ? known.region : undefined);
    if (expected !== undefined && batch.probe.region !== expected) {
      throw new CollectorError(
        'region_mismatch',
        boundRegion !== undefined
          ? `probe ${probeId} is bound to region ${expected} in collector.tokens, the batch says ${batch.probe.region}; to move it, change its entry in the plan and restart the collector`
          : `probe ${probeId} pushes under region ${expected} (its first push; its collector.tokens entry names no region), the batch says ${batch.probe.region}; give the entry a region or restart the collector to move it`,
      );
    }
    const problem = serverProblem(this.opts.servers, batch.results);
    if (problem) {
      throw new CollectorError('unknown_server', problem);
    }
    const { stream, firstResult } = batch.batch;
    if ((stream === undefined) !== (firstResult === undefined)) {
      throw new CollectorError(
        'invalid_batch',
        `batch.${stream === undefined ? 'stream' : 'firstResult'}: required with batch.${stream === undefined ? 'firstResult' : 'stream'}`,
      );
    }
  }

  /**
   * Applies a batch already validated against the wire schema and bound to `probeId`.
   * `boundRegion` is the region collector.tokens gives the probe (undefined: the older entry
   * without one, then the region of its first accepted push binds it until it goes silent).
   */
  apply(probeId: string, batch: Batch, boundRegion?: string): PushReply {
    const started = process.hrtime.bigint();
    this.#admissible(probeId, batch, boundRegion);
    const known = this.#probes.get(probeId);
    const { stream, firstResult } = batch.batch;
    const ref = { id: batch.batch.id, stream, firstResult, count: batch.results.length };
    const todo = this.#dedup.select(probeId, ref);
    if (todo.length === 0 && batch.results.length > 0) {
      this.self.batches.inc({ result: 'duplicate' });
      return { status: 'duplicate', results: batch.results.length };
    }
    // A probe that moved region (allowed: its old-form entry, silent long enough to be swept)
    // leaves nothing under the old region.
    if (known && known.region !== batch.probe.region) this.#dropRegion(probeId, known);
    const probe = { id: probeId, region: batch.probe.region };
    const ops = this.#ops;
    ops.clear();
    for (const i of todo) {
      const r = batch.results[i];
      if (r) resultOps(probe, r, ops);
    }
    this.#bound(ops);

    const state = this.#probes.get(probeId) ?? {
      region: probe.region,
      lastSeen: 0,
      swept: false,
      series: new Set<Series>(),
      groups: new Map<Family, Map<string, Series>>(),
    };
    // Count before applying anything, so a rejected batch leaves no trace. Each series is looked
    // up once, here (its body rendered and hashed once), and handed to the store as it is.
    const found: (Series | undefined)[] = new Array(ops.length);
    const groups: (string | undefined)[] = new Array(ops.length);
    const fresh = new Set<string>();
    const values = ops.labels;
    for (let i = 0; i < ops.length; i++) {
      const metric = ops.metric[i] as MetricKey;
      const f = this.store.family(metric);
      if (!f) continue;
      const at = ops.start[i] as number;
      if (ops.kind[i] === 'one-of') {
        // The same key goes to the store (undefined: a label value no series holds yet).
        const group = f.keyOf(values, at, f.exclusiveAt);
        groups[i] = group;
        const had = group === undefined ? undefined : state.groups.get(f)?.get(group);
        if (!had || had.removed) fresh.add(`${metric}\u0000\u0000${f.body(values, at, f.exclusiveAt)}`);
      } else {
        const s = f.find(values, at);
        found[i] = s;
        if (!s || !state.series.has(s)) fresh.add(`${metric}\u0000${f.body(values, at)}`);
      }
    }
    if (seriesOf(state) + fresh.size > this.opts.maxSeriesPerProbe) {
      throw new CollectorError(
        'series_limit',
        `probe ${probeId} has ${seriesOf(state)} series, this batch adds ${fresh.size}, the limit is ${this.opts.maxSeriesPerProbe}`,
      );
    }
    state.region = probe.region;
    state.lastSeen = this.now();
    state.swept = false;
    this.#probes.set(probeId, state);

    this.#agree(probeId, ops);
    const info = { ...batch.probe, ...probe };
    const newResults = todo.length === batch.results.length ? batch.results : todo.map((i) => batch.results[i]).filter((r) => r !== undefined);
    const touched: (Series | undefined)[] = new Array(ops.length);
    for (const out of this.outputs) {
      if (out === this.store) this.store.apply(ops, found, touched, groups);
      else out.apply(ops);
      out.results?.(info, newResults);
    }
    for (let i = 0; i < ops.length; i++) {
      const s = touched[i];
      if (!s) continue;
      if (ops.kind[i] !== 'one-of') state.series.add(s);
      else {
        let g = state.groups.get(s.family);
        if (!g) state.groups.set(s.family, (g = new Map()));
        g.set(groups[i] ?? (s.family.keyOf(values, ops.start[i], s.family.exclusiveAt) as string), s);
      }
    }
    this.#dedup.commit(probeId, ref);

    const rp = { region: probe.region, probe: probeId };
    this.self.lastPush.set(rp, state.lastSeen / 1000);
    if (batch.probe.spool) {
      this.self.spoolBytes.set(rp, batch.probe.spool.bytes);
      this.self.spoolDropped.set(rp, batch.probe.spool.dropped);
    }
    this.self.series.set({ probe: probeId }, seriesOf(state));
    this.self.batches.inc({ result: 'accepted' });
    this.self.results.inc(todo.length);
    this.self.ingestDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return { status: 'accepted', results: batch.results.length };
  }

  /** Replaces each probe's report of a fleet-wide verdict by what the probes agree on (consensus.ts). */
  #agree(probeId: string, ops: SampleOps): void {
    const values = ops.labels;
    for (let i = 0; i < ops.length; i++) {
      const metric = ops.metric[i] as MetricKey;
      if (!FLEET_WIDE.has(metric)) continue;
      const at = ops.start[i] as number;
      const kind = ops.kind[i];
      if (kind === 'set') {
        const key = seriesKeyAt(metric, values, at);
        if (!this.#verdicts.has(key)) this.#verdicts.set(key, { metric, values: ops.labelsOf(i), oneOf: false });
        ops.value[i] = this.#numbers.vote(key, probeId, ops.value[i] as number);
      } else if (kind === 'one-of') {
        const own = oneOfAt(metric);
        const key = seriesKeyAt(metric, values, at, own);
        if (!this.#verdicts.has(key)) this.#verdicts.set(key, { metric, values: ops.labelsOf(i), oneOf: true });
        values[at + own] = this.#labels.vote(key, probeId, values[at + own] ?? '');
      }
    }
  }

  /** A silent probe loses its votes; verdicts that change with that are set again. */
  #withdraw(probeId: string): void {
    const ts = this.now();
    const ops = new SampleOps();
    for (const { key, value } of this.#numbers.forget(probeId)) {
      const v = this.#verdicts.get(key);
      if (v && !v.oneOf) ops.push('set', v.metric, value, ts, v.values);
    }
    for (const { key, value } of this.#labels.forget(probeId)) {
      const v = this.#verdicts.get(key);
      if (v?.oneOf)
        ops.push(
          'one-of',
          v.metric,
          1,
          ts,
          v.values.map((x, j) => (j === oneOfAt(v.metric) ? value : x)),
        );
    }
    if (ops.length > 0) for (const out of this.outputs) out.apply(ops);
  }

  /** Removes a series of a probe's state from the store and from every other output. */
  #remove(s: Series): void {
    if (s.removed) return;
    const labels = parseBody(s.body);
    this.store.drop(s);
    for (const out of this.outputs) if (out !== this.store) out.remove(s.family.key, labels);
  }

  /** Removes the series of a probe's state that `which` picks, from the store and the state. */
  #removeWhere(state: ProbeState, which: (s: Series) => boolean): void {
    for (const s of state.series) {
      if (!which(s)) continue;
      this.#remove(s);
      state.series.delete(s);
    }
    for (const g of state.groups.values()) {
      for (const [group, s] of g) {
        if (!which(s)) continue;
        this.#remove(s);
        g.delete(group);
      }
    }
  }

  /** Removes every series of the probe under its old region (counters too) and its region's push gauges. */
  #dropRegion(probeId: string, state: ProbeState): void {
    const old = { region: state.region, probe: probeId };
    this.#removeWhere(state, (s) => s.family.labelNames.includes('region') && parseBody(s.body).region === state.region);
    this.self.lastPush.remove(old);
    this.self.spoolBytes.remove(old);
    this.self.spoolDropped.remove(old);
  }

  /** Removes per-probe gauges of probes silent longer than probeStaleAfterMs; returns their ids. */
  sweep(): string[] {
    const cutoff = this.now() - this.opts.probeStaleAfterMs;
    const gone: string[] = [];
    for (const [id, state] of this.#probes) {
      if (state.swept || state.lastSeen > cutoff) continue;
      state.swept = true;
      this.#removeWhere(state, (s) => s.family.def.type === 'gauge' && s.family.def.perProbe === true);
      this.#withdraw(id);
      this.self.series.set({ probe: id }, seriesOf(state));
      gone.push(id);
    }
    return gone;
  }

  probeIds(): string[] {
    return [...this.#probes.keys()];
  }
}
