/**
 * The collector's own metrics and the plan-derived gauges (the cutover window, the servers' names).
 */
import type { Registry } from 'prom-client';
import { METRICS } from '../protocol/metrics.js';
import { createMetric, type MetricFor } from '../protocol/prom.js';

export interface SelfMetrics {
  batches: MetricFor<'collectorBatches'>;
  rejections: MetricFor<'collectorRejections'>;
  results: MetricFor<'collectorResults'>;
  series: MetricFor<'collectorSeries'>;
  ingestDuration: MetricFor<'collectorIngestDuration'>;
  lastPush: MetricFor<'probeLastPush'>;
  spoolBytes: MetricFor<'probeSpoolBytes'>;
  spoolDropped: MetricFor<'probeSpoolDropped'>;
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
  const info = createMetric(METRICS.serverInfo, registry);
  for (const s of servers) info.set({ ip: s.ip, side: s.side, server_name: s.name ?? s.ip }, 1);
  createMetric(METRICS.cutoverWindowActive, registry, function collect() {
    const t = now();
    this.set(t >= window.start && t < window.end ? 1 : 0);
  });
  createMetric(METRICS.cutoverWindowStart, registry).set(window.start / 1000);
  createMetric(METRICS.cutoverWindowEnd, registry).set(window.end / 1000);
  return {
    batches: createMetric(METRICS.collectorBatches, registry),
    rejections: createMetric(METRICS.collectorRejections, registry),
    results: createMetric(METRICS.collectorResults, registry),
    series: createMetric(METRICS.collectorSeries, registry),
    ingestDuration: createMetric(METRICS.collectorIngestDuration, registry),
    lastPush: createMetric(METRICS.probeLastPush, registry),
    spoolBytes: createMetric(METRICS.probeSpoolBytes, registry),
    spoolDropped: createMetric(METRICS.probeSpoolDropped, registry),
  };
}
