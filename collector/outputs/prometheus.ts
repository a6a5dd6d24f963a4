/**
 * The /metrics output: applies sample operations to prom-client metrics in an injected Registry.
 */
import type { Registry } from 'prom-client';
import { METRICS, metricsOf, oneOfLabel, type MetricDef, type MetricKey } from '../../protocol/metrics.js';
import { createMetric, type CounterOf, type GaugeOf, type HistogramOf, type TypedMetric } from '../../protocol/prom.js';
import { seriesKey, type Labels, type SampleOp } from '../samples.js';
import type { Output } from './output.js';

/** Metrics the results feed (everything but the collector's own, the plan-derived gauges and the probe's). */
export const RESULT_METRICS: readonly MetricKey[] = metricsOf('result');

type AnyMetric = TypedMetric<MetricDef>;

export class PrometheusOutput implements Output {
  readonly name = 'prometheus';
  readonly #metrics = new Map<MetricKey, AnyMetric>();
  /** For one-of gauges: series (without the exclusive label) → the value currently set. */
  readonly #current = new Map<string, string>();

  constructor(registry: Registry) {
    for (const key of RESULT_METRICS) this.#metrics.set(key, createMetric(METRICS[key] as MetricDef, registry));
  }

  apply(ops: readonly SampleOp[]): void {
    for (const op of ops) {
      const m = this.#metrics.get(op.metric);
      if (!m) continue;
      switch (op.op) {
        case 'observe':
          (m as HistogramOf<string>).observe(op.labels, op.value);
          break;
        case 'inc':
          (m as CounterOf<string>).inc(op.labels, op.value);
          break;
        case 'set':
          (m as GaugeOf<string>).set(op.labels, op.value);
          break;
        case 'one-of': {
          const g = m as GaugeOf<string>;
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
    const exclusive = oneOfLabel(metric);
    if (exclusive) this.#current.delete(seriesKey(metric, labels, [exclusive, '']));
  }

  async close(): Promise<void> {}
}
