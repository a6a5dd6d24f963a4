/**
 * The probe's own metrics (served by probe/health.ts), in an injected prom-client Registry.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRICS, type MetricDef } from '../protocol/metrics.js';
import type { SpoolStats } from './spool.js';

export interface ProbeMetrics {
  readonly registry: Registry;
  pushes: Counter<string>;
  checkRuns: Counter<string>;
  checkDuration: Histogram<string>;
  inFlight: Gauge<string>;
  spoolDropped: Counter<string>;
}

function counter(def: MetricDef, registry: Registry): Counter<string> {
  return new Counter({ name: def.name, help: def.help, labelNames: [...def.labels], registers: [registry] });
}

/** Registers the probe metrics; spool gauges read `spool()` at scrape time. */
export function createProbeMetrics(registry: Registry, probe: { id: string; region: string }, spool: () => SpoolStats | undefined): ProbeMetrics {
  const rp = { region: probe.region, probe: probe.id };
  const gauge = (def: MetricDef, read: (s: SpoolStats) => number) =>
    new Gauge({
      name: def.name,
      help: def.help,
      labelNames: [...def.labels],
      registers: [registry],
      collect() {
        const s = spool();
        if (s) this.set(rp, read(s));
      },
    });
  gauge(METRICS.probeSpooledBytes, (s) => s.bytes);
  gauge(METRICS.probeSpooledBatches, (s) => s.batches);
  const d = METRICS.probeCheckDuration;
  return {
    registry,
    pushes: counter(METRICS.probePushes, registry),
    checkRuns: counter(METRICS.probeCheckRuns, registry),
    checkDuration: new Histogram({ name: d.name, help: d.help, labelNames: [...d.labels], buckets: [...d.buckets], registers: [registry] }),
    inFlight: new Gauge({
      name: METRICS.probeChecksInFlight.name,
      help: METRICS.probeChecksInFlight.help,
      labelNames: [...METRICS.probeChecksInFlight.labels],
      registers: [registry],
    }),
    spoolDropped: counter(METRICS.probeSpoolDroppedTotal, registry),
  };
}
