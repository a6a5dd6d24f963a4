/**
 * The probe's own /metrics text (probe/self-metrics.ts, its own small registry) is the text
 * prom-client's Registry wrote for the same metrics and the same calls, byte for byte: the same
 * calls go to both (series in varied label order, label values needing escapes, observations in
 * every bucket and above the last, the spool gauges read at scrape time, removed series), and
 * the text is promtool-clean. One small case is pinned line by line too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { METRICS, type MetricOf } from '../../protocol/metrics.js';
import { createMetric } from '../../protocol/prom.js';
import { createProbeMetrics, SelfMetricsRegistry, type ProbeMetrics } from '../../probe/self-metrics.js';
import type { SpoolStats } from '../../probe/spool.js';

/** The probe metrics as they were registered in prom-client before (the reference). */
function promClientMetrics(registry: Registry, probe: { id: string; region: string }, spool: () => SpoolStats | undefined): Omit<ProbeMetrics, 'registry'> {
  const rp = { region: probe.region, probe: probe.id };
  const spoolGauge = (def: MetricOf<'probeSpooledBytes' | 'probeSpooledBatches'>, read: (s: SpoolStats) => number) =>
    createMetric(def, registry, function collect() {
      const s = spool();
      if (s) this.set(rp, read(s));
    });
  spoolGauge(METRICS.probeSpooledBytes, (s) => s.bytes);
  spoolGauge(METRICS.probeSpooledBatches, (s) => s.batches);
  return {
    pushes: createMetric(METRICS.probePushes, registry),
    checkRuns: createMetric(METRICS.probeCheckRuns, registry),
    checkDuration: createMetric(METRICS.probeCheckDuration, registry),
    inFlight: createMetric(METRICS.probeChecksInFlight, registry),
    spoolDropped: createMetric(METRICS.probeSpoolDroppedTotal, registry),
  };
}

function both(spool: () => SpoolStats | undefined, probe = { id: 'p-eu', region: 'eu' }) {
  const ours = new SelfMetricsRegistry();
  const ref = new Registry();
  return { ours, ref, metrics: [createProbeMetrics(ours, probe, spool), promClientMetrics(ref, probe, spool)] as const };
}

test('the probe metrics text equals prom-client’s for the same calls, and is promtool-clean', async () => {
  let spool: SpoolStats | undefined;
  const probe = { id: 'p-"eu"\\1', region: 'eu\nwest' };
  const { ours, ref, metrics } = both(() => spool, probe);
  // Before anything happened (the spool not open yet): headers only.
  assert.equal(await ours.metrics(), await ref.metrics());
  spool = { bytes: 1234, batches: 3, dropped: 0 } as SpoolStats;
  const rp = { region: probe.region, probe: probe.id };
  for (const m of metrics) {
    m.pushes.inc({ ...rp, collector: 'http://c1:9464', result: 'accepted' });
    // The same series with its labels in another order, and a new one.
    m.pushes.inc({ result: 'accepted', collector: 'http://c1:9464', probe: probe.id, region: probe.region }, 2);
    m.pushes.inc({ ...rp, collector: 'http://c2:9464', result: 'error' });
    m.inFlight.set(rp, 3);
    m.inFlight.set(rp, 0);
    m.spoolDropped.inc(rp, 4);
    for (const [i, seconds] of [0.004, 0.01, 0.0101, 0.3, 1, 2.5, 7.25, 59.9, 600, 601, 1e4, 0.1 + 0.2].entries()) {
      const type = i % 3 === 0 ? 'smtp' : 'dns';
      m.checkDuration.observe({ ...rp, type }, seconds);
      m.checkRuns.inc({ ...rp, type, result: i % 4 === 0 ? 'timeout' : 'success' });
    }
    m.checkRuns.inc({ ...rp, type: 'auth', result: 'success' });
    m.checkRuns.remove({ ...rp, type: 'auth', result: 'success' });
  }
  const text = await ours.metrics();
  assert.equal(text, await ref.metrics());
  assert.equal(ours.contentType, ref.contentType);
  // Values, not only the same text: the spool gauges are read at scrape time.
  spool = { bytes: 99, batches: 1, dropped: 0 } as SpoolStats;
  const again = await ours.metrics();
  assert.match(again, /^mailprobe_probe_spooled_bytes\{region="eu\\nwest",probe="p-\\"eu\\"\\\\1"\} 99$/m);
  assert.equal(again, await ref.metrics());
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
});

test('the probe metrics text, line by line', async () => {
  const ours = new SelfMetricsRegistry();
  const m = createProbeMetrics(ours, { id: 'p-eu', region: 'eu' }, () => ({ bytes: 10, batches: 1, dropped: 0 }) as SpoolStats);
  m.checkDuration.observe({ region: 'eu', probe: 'p-eu', type: 'dns' }, 0.02);
  m.checkDuration.observe({ region: 'eu', probe: 'p-eu', type: 'dns' }, 700);
  m.spoolDropped.inc({ region: 'eu', probe: 'p-eu' }, 2);
  const text = await ours.metrics();
  const d = METRICS.probeCheckDuration;
  const rp = 'region="eu",probe="p-eu"';
  const buckets = d.buckets.map((b) => `mailprobe_probe_check_duration_seconds_bucket{le="${b}",${rp},type="dns"} ${b < 0.02 ? 0 : 1}`);
  assert.equal(
    text,
    [
      `# HELP mailprobe_probe_spooled_bytes ${METRICS.probeSpooledBytes.help}`,
      '# TYPE mailprobe_probe_spooled_bytes gauge',
      `mailprobe_probe_spooled_bytes{${rp}} 10`,
      '',
      `# HELP mailprobe_probe_spooled_batches ${METRICS.probeSpooledBatches.help}`,
      '# TYPE mailprobe_probe_spooled_batches gauge',
      `mailprobe_probe_spooled_batches{${rp}} 1`,
      '',
      `# HELP mailprobe_probe_pushes_total ${METRICS.probePushes.help}`,
      '# TYPE mailprobe_probe_pushes_total counter',
      '',
      `# HELP mailprobe_probe_check_runs_total ${METRICS.probeCheckRuns.help}`,
      '# TYPE mailprobe_probe_check_runs_total counter',
      '',
      `# HELP mailprobe_probe_check_duration_seconds ${d.help}`,
      '# TYPE mailprobe_probe_check_duration_seconds histogram',
      ...buckets,
      `mailprobe_probe_check_duration_seconds_bucket{le="+Inf",${rp},type="dns"} 2`,
      `mailprobe_probe_check_duration_seconds_sum{${rp},type="dns"} 700.02`,
      `mailprobe_probe_check_duration_seconds_count{${rp},type="dns"} 2`,
      '',
      `# HELP mailprobe_probe_checks_in_flight ${METRICS.probeChecksInFlight.help}`,
      '# TYPE mailprobe_probe_checks_in_flight gauge',
      '',
      `# HELP mailprobe_probe_spool_dropped_batches_total ${METRICS.probeSpoolDroppedTotal.help}`,
      '# TYPE mailprobe_probe_spool_dropped_batches_total counter',
      `mailprobe_probe_spool_dropped_batches_total{${rp}} 2`,
      '',
    ].join('\n'),
  );
  assert.throws(() => m.spoolDropped.inc({ region: 'eu', probe: 'p-eu' }, -1), /mailprobe_probe_spool_dropped_batches_total: cannot add -1/);
});
