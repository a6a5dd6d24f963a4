/**
 * The one way a metric of the catalogue (protocol/metrics.ts) becomes a prom-client metric, used
 * by the probe's own /metrics and by the collector's: {@link createMetric} registers the entry in
 * an injected Registry and hands it back typed by the entry, so a sample with a missing, misspelt
 * or extra label does not compile (prom-client's own types take any subset of the label names).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MetricDef, MetricKey, MetricOf, MetricType } from './metrics.js';

/** Label values of a metric whose label names are `L`: all of them, no other. */
export type LabelValues<L extends string> = { readonly [K in L]: string | number };
/** A method's arguments: the label values first, unless the metric has no labels. */
type With<L extends string, A extends unknown[]> = [L] extends [never] ? A : [labels: LabelValues<L>, ...A];

/** A catalogue counter with label names `L`. */
export interface CounterOf<L extends string> {
  inc(...args: With<L, [value?: number]>): void;
  remove(labels: LabelValues<L>): void;
  reset(): void;
}
/** A catalogue gauge with label names `L`. */
export interface GaugeOf<L extends string> {
  set(...args: With<L, [value: number]>): void;
  inc(...args: With<L, [value?: number]>): void;
  dec(...args: With<L, [value?: number]>): void;
  remove(labels: LabelValues<L>): void;
  reset(): void;
}
/** A catalogue histogram with label names `L`. */
export interface HistogramOf<L extends string> {
  observe(...args: With<L, [value: number]>): void;
  remove(labels: LabelValues<L>): void;
  reset(): void;
}

type Typed<T extends MetricType, L extends string> = T extends 'counter' ? CounterOf<L> : T extends 'gauge' ? GaugeOf<L> : HistogramOf<L>;
/** The typed metric of a catalogue entry (for a plain {@link MetricDef}: any label names). */
export type TypedMetric<D extends MetricDef> = Typed<D['type'], D['labels'][number]>;
/** The typed metric of a catalogue key. */
export type MetricFor<K extends MetricKey> = TypedMetric<MetricOf<K>>;

/**
 * Registers a catalogue entry in `registry`. `collect` (gauges only) runs at every scrape, like
 * prom-client's own `collect`.
 */
export function createMetric<const D extends MetricDef>(def: D, registry: Registry, collect?: (this: Gauge<string>) => void): TypedMetric<D> {
  const common = { name: def.name, help: def.help, labelNames: [...def.labels], registers: [registry] };
  switch (def.type) {
    case 'counter':
      return new Counter(common) as unknown as TypedMetric<D>;
    case 'gauge':
      return new Gauge(collect ? { ...common, collect } : common) as unknown as TypedMetric<D>;
    case 'histogram':
      return new Histogram({ ...common, buckets: [...(def.buckets ?? [])] }) as unknown as TypedMetric<D>;
  }
}
