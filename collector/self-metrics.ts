/**
 * The collector's own metrics and the plan-derived gauges (the cutover window, the servers' names).
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS } from '../protocol/metrics.js';
import { createMetric } from './outputs/prometheus.js';

export interface SelfMetrics {
  batches: Counter<'result'>;
  rejections: Counter<'code'>;
  results: Counter<string>;
  series: Gauge<'probe'>;
  ingestDuration: Histogram<string>;
  lastPush: Gauge<'region' | 'probe'>;
  spoolBytes: Gauge<'region' | 'probe'>;
  spoolDropped: Gauge<'region' | 'probe'>;
}

export interface Window {
  start: number;
  end: number;
}

export interface ServerRef {
  ip: string;
  side: string;
  name?: string | undefined;
}

export function createSelfMetrics(registry: Registry, window: Window, now: () => number = Date.now, servers: readonly ServerRef[] = []): SelfMetrics {
  // cutover.servers[].name for panels: joined on ip (the name defaults to the IP).
  const info = createMetric(METRICS.serverInfo, registry) as Gauge<string>;
  for (const s of servers) info.set({ ip: s.ip, side: s.side, server_name: s.name ?? s.ip }, 1);
  createMetric(METRICS.cutoverWindowActive, registry, function collect() {
    const t = now();
    this.set(t >= window.start && t < window.end ? 1 : 0);
  });
  (createMetric(METRICS.cutoverWindowStart, registry) as Gauge<string>).set(window.start / 1000);
  (createMetric(METRICS.cutoverWindowEnd, registry) as Gauge<string>).set(window.end / 1000);
  return {
    batches: createMetric(METRICS.collectorBatches, registry) as Counter<'result'>,
    rejections: createMetric(METRICS.collectorRejections, registry) as Counter<'code'>,
    results: createMetric(METRICS.collectorResults, registry) as Counter<string>,
    series: createMetric(METRICS.collectorSeries, registry) as Gauge<'probe'>,
    ingestDuration: createMetric(METRICS.collectorIngestDuration, registry) as Histogram<string>,
    lastPush: createMetric(METRICS.probeLastPush, registry) as Gauge<'region' | 'probe'>,
    spoolBytes: createMetric(METRICS.probeSpoolBytes, registry) as Gauge<'region' | 'probe'>,
    spoolDropped: createMetric(METRICS.probeSpoolDropped, registry) as Gauge<'region' | 'probe'>,
  };
}
