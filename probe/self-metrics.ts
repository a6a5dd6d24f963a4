/**
 * The probe's own metrics (served by probe/health.ts), in an injected prom-client Registry.
 */
import type { Registry } from 'prom-client';
import { METRICS, type MetricOf } from '../protocol/metrics.js';
import { createMetric, type MetricFor } from '../protocol/prom.js';
import type { SpoolStats } from './spool.js';

export interface ProbeMetrics {
  readonly registry: Registry;
  pushes: MetricFor<'probePushes'>;
  checkRuns: MetricFor<'probeCheckRuns'>;
  checkDuration: MetricFor<'probeCheckDuration'>;
  inFlight: MetricFor<'probeChecksInFlight'>;
  spoolDropped: MetricFor<'probeSpoolDroppedTotal'>;
}

/** Registers the probe metrics; spool gauges read `spool()` at scrape time. */
export function createProbeMetrics(registry: Registry, probe: { id: string; region: string }, spool: () => SpoolStats | undefined): ProbeMetrics {
  const rp = { region: probe.region, probe: probe.id };
  const spoolGauge = (def: MetricOf<'probeSpooledBytes' | 'probeSpooledBatches'>, read: (s: SpoolStats) => number) =>
    createMetric(def, registry, function collect() {
      const s = spool();
      if (s) this.set(rp, read(s));
    });
  spoolGauge(METRICS.probeSpooledBytes, (s) => s.bytes);
  spoolGauge(METRICS.probeSpooledBatches, (s) => s.batches);
  return {
    registry,
    pushes: createMetric(METRICS.probePushes, registry),
    checkRuns: createMetric(METRICS.probeCheckRuns, registry),
    checkDuration: createMetric(METRICS.probeCheckDuration, registry),
    inFlight: createMetric(METRICS.probeChecksInFlight, registry),
    spoolDropped: createMetric(METRICS.probeSpoolDroppedTotal, registry),
  };
}
