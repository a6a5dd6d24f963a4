/**
 * The /metrics output: applies sample operations to prom-client metrics in an injected Registry.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRICS, type MetricDef, type MetricKey } from '../../protocol/metrics.js';
import { seriesKey, type Labels, type SampleOp } from '../samples.js';
import type { Output } from './output.js';

export type PromMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** Creates one prom-client metric from its catalogue entry in the given registry. */
export function createMetric(def: MetricDef, registry: Registry, collect?: (this: Gauge<string>) => void): PromMetric {
  const common = { name: def.name, help: def.help, labelNames: [...def.labels], registers: [registry] };
  switch (def.type) {
    case 'counter':
      return new Counter(common);
    case 'gauge':
      return new Gauge(collect ? { ...common, collect } : common);
    case 'histogram':
      return new Histogram({ ...common, buckets: [...(def.buckets ?? [])] });
  }
}

/** Metrics the results feed (everything but the collector's own and the plan-derived gauges). */
export const RESULT_METRICS: readonly MetricKey[] = (Object.keys(METRICS) as MetricKey[]).filter(
  (k) => !k.startsWith('collector') && !k.startsWith('cutoverWindow') && !k.startsWith('probe') && k !== 'serverInfo',
);

/** Gauges set as one-of (1 on the current value of this label, other values removed). */
export const ONE_OF_LABEL: Partial<Record<MetricKey, string>> = { dnsAnswerSide: 'side', roundtripAuth: 'result', ptrInfo: 'ptr' };

export class PrometheusOutput implements Output {
  readonly name = 'prometheus';
  readonly #metrics = new Map<MetricKey, PromMetric>();
  /** For one-of gauges: series (without the exclusive label) → the value currently set. */
  readonly #current = new Map<string, string>();

  constructor(registry: Registry) {
    for (const key of RESULT_METRICS) this.#metrics.set(key, createMetric(METRICS[key], registry));
  }

  apply(ops: readonly SampleOp[]): void {
    for (const op of ops) {
      const m = this.#metrics.get(op.metric);
      if (!m) continue;
      switch (op.op) {
        case 'observe':
          (m as Histogram<string>).observe(op.labels, op.value);
          break;
        case 'inc':
          (m as Counter<string>).inc(op.labels, op.value);
          break;
        case 'set':
          (m as Gauge<string>).set(op.labels, op.value);
          break;
        case 'one-of': {
          const g = m as Gauge<string>;
          const key = seriesKey(op.metric, op.labels, [op.label, '']);
          const prev = this.#current.get(key);
          if (prev !== undefined && prev !== op.value) g.remove({ ...op.labels, [op.label]: prev });
          g.set({ ...op.labels, [op.label]: op.value }, 1);
          this.#current.set(key, op.value);
          break;
        }
      }
    }
  }

  remove(metric: MetricKey, labels: Labels): void {
    const m = this.#metrics.get(metric);
    m?.remove(labels);
    const exclusive = ONE_OF_LABEL[metric];
    if (exclusive) this.#current.delete(seriesKey(metric, labels, [exclusive, '']));
  }

  async close(): Promise<void> {}
}
