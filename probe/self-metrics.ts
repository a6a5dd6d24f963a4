/**
 * The probe's own metrics (served by probe/health.ts) in a small registry of its own, not
 * prom-client: a probe has seven metrics of the catalogue (protocol/metrics.ts) and a scrape now
 * and then, and prom-client (with its default-metrics, push-gateway and cluster modules and
 * @opentelemetry/api, ~80 files) cost it ~0.8 MB of RSS (`npm run bench:footprint`). The text is
 * the one prom-client's Registry wrote for the same metrics, line for line: `# HELP`, `# TYPE`,
 * the series in the order they first appeared, their labels in the order of the first call,
 * histogram buckets cumulative with `le` first, then `_sum` and `_count`; metrics separated by a
 * blank line (test/probe/self-metrics.test.ts compares both on the same calls).
 */
import { METRICS, type MetricDef, type MetricKey, type MetricOf } from '../protocol/metrics.js';
import type { LabelValues, MetricFor } from '../protocol/prom.js';
import { escapeHelp, escapeLabel, formatValue } from '../protocol/exposition.js';
import type { SpoolStats } from './spool.js';

type Labels = Readonly<Record<string, string | number>>;
interface Series {
  labels: Labels;
  value: number;
  /** Histograms: observations per bucket (not cumulative), sum in `value`. */
  buckets?: number[];
  count?: number;
}

const labelValue = (v: string | number): string => (typeof v === 'string' ? escapeLabel(v) : String(v));
const labelText = (l: Labels): string =>
  Object.entries(l)
    .map(([k, v]) => `${k}="${labelValue(v)}"`)
    .join(',');
/** One key per label set, whatever the order of its labels. */
const keyOf = (l: Labels): string =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}:${l[k]}`)
    .join(',');

class Metric {
  readonly series = new Map<string, Series>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly bounds: readonly number[] = [],
    readonly collect?: () => void,
  ) {}

  at(labels: Labels): Series {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) {
      s = this.type === 'histogram' ? { labels, value: 0, buckets: this.bounds.map(() => 0), count: 0 } : { labels, value: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  inc(labels: Labels, by = 1): void {
    if (!Number.isFinite(by) || (this.type === 'counter' && by < 0)) throw new TypeError(`${this.name}: cannot add ${by}`);
    this.at(labels).value += by;
  }

  set(labels: Labels, value: number): void {
    // prom-client's gauge keeps the label object of the latest call.
    this.series.set(keyOf(labels), { labels, value });
  }

  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: cannot observe ${value}`);
    const s = this.at(labels);
    s.value += value;
    s.count = (s.count ?? 0) + 1;
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0 && s.buckets) s.buckets[i] = (s.buckets[i] ?? 0) + 1;
  }

  text(): string {
    this.collect?.();
    const lines = [`# HELP ${escapeHelp(this.name)} ${escapeHelp(this.help)}`, `# TYPE ${escapeHelp(this.name)} ${this.type}`];
    for (const s of this.series.values()) {
      const labels = labelText(s.labels);
      if (!s.buckets) {
        lines.push(`${this.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
        continue;
      }
      const tail = labels ? `,${labels}` : '';
      let acc = 0;
      this.bounds.forEach((b, i) => {
        acc += s.buckets?.[i] ?? 0;
        lines.push(`${this.name}_bucket{le="${b}"${tail}} ${formatValue(acc)}`);
      });
      lines.push(`${this.name}_bucket{le="+Inf"${tail}} ${formatValue(s.count ?? 0)}`);
      lines.push(`${this.name}_sum${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
      lines.push(`${this.name}_count${labels ? `{${labels}}` : ''} ${formatValue(s.count ?? 0)}`);
    }
    return lines.join('\n');
  }
}

/** The probe's metrics in the Prometheus text format (version 0.0.4), for its /metrics. */
export class SelfMetricsRegistry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  readonly #metrics: Metric[] = [];

  /** Registers a catalogue entry; `collect` (gauges) runs at every scrape, before the series are written. */
  add<K extends MetricKey>(def: MetricOf<K> & MetricDef, collect?: (set: (labels: Labels, value: number) => void) => void): MetricFor<K> {
    if (this.#metrics.some((m) => m.name === def.name)) throw new Error(`A metric with the name ${def.name} has already been registered.`);
    let metric: Metric;
    const set = (labels: Labels, value: number) => metric.set(labels, value);
    metric = new Metric(def.name, def.help, def.type, def.buckets ?? [], collect ? () => collect(set) : undefined);
    this.#metrics.push(metric);
    const remove = (labels: Labels) => void metric.series.delete(keyOf(labels));
    const reset = () => metric.series.clear();
    return {
      inc: (labels: Labels, by?: number) => metric.inc(labels, by),
      set,
      dec: (labels: Labels, by = 1) => metric.inc(labels, -by),
      observe: (labels: Labels, value: number) => metric.observe(labels, value),
      remove,
      reset,
    } as unknown as MetricFor<K>;
  }

  async metrics(): Promise<string> {
    return `${this.#metrics.map((m) => m.text()).join('\n\n')}\n`;
  }
}

export interface ProbeMetrics {
  readonly registry: SelfMetricsRegistry;
  pushes: MetricFor<'probePushes'>;
  checkRuns: MetricFor<'probeCheckRuns'>;
  checkDuration: MetricFor<'probeCheckDuration'>;
  inFlight: MetricFor<'probeChecksInFlight'>;
  spoolDropped: MetricFor<'probeSpoolDroppedTotal'>;
}

type RP = LabelValues<'region' | 'probe'>;

/** Registers the probe metrics; spool gauges read `spool()` at scrape time. */
export function createProbeMetrics(registry: SelfMetricsRegistry, probe: { id: string; region: string }, spool: () => SpoolStats | undefined): ProbeMetrics {
  const rp: RP = { region: probe.region, probe: probe.id };
  const spoolGauge = (def: MetricOf<'probeSpooledBytes' | 'probeSpooledBatches'>, read: (s: SpoolStats) => number) =>
    registry.add<'probeSpooledBytes' | 'probeSpooledBatches'>(def, (set) => {
      const s = spool();
      if (s) set(rp, read(s));
    });
  spoolGauge(METRICS.probeSpooledBytes, (s) => s.bytes);
  spoolGauge(METRICS.probeSpooledBatches, (s) => s.batches);
  return {
    registry,
    pushes: registry.add<'probePushes'>(METRICS.probePushes),
    checkRuns: registry.add<'probeCheckRuns'>(METRICS.probeCheckRuns),
    checkDuration: registry.add<'probeCheckDuration'>(METRICS.probeCheckDuration),
    inFlight: registry.add<'probeChecksInFlight'>(METRICS.probeChecksInFlight),
    spoolDropped: registry.add<'probeSpoolDroppedTotal'>(METRICS.probeSpoolDroppedTotal),
  };
}
