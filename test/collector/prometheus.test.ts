/**
 * A real Prometheus (Debian package) scrapes the collector (it asks for OpenMetrics first) and
 * answers queries with the pushed series.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestCollector } from '../support/collector.js';
import { startTestPrometheus } from '../../bench/lib/prometheus.js';
import { batchOf, mixedResults, NEW_IP, OLD_IP } from '../support/results.js';

test('Prometheus scrapes the collector and answers for mailprobe_smtp_duration_seconds_count', async () => {
  const c = await startTestCollector();
  const prom = await startTestPrometheus({ targets: [new URL(c.url).host], ruleFiles: [] });
  try {
    const r1 = await c.push(batchOf(mixedResults(), { id: 'p-eu', region: 'eu' }));
    const r2 = await c.push(batchOf(mixedResults(), { id: 'p-us', region: 'us' }));
    assert.equal(r1.status, 200);
    assert.equal(r2.status, 200);
    await prom.waitForScrapes(2);

    const up = await prom.vector('up{job="mailprobe-collector"}');
    assert.equal(up.length, 1);
    assert.equal(up[0]?.value[1], '1', 'the scrape (OpenMetrics) succeeded');

    const counts = await prom.vector('sum by (region, probe, ip, side) (mailprobe_smtp_duration_seconds_count{phase="connect"})');
    const got = counts.map((s) => `${s.metric.region}/${s.metric.probe}/${s.metric.ip}/${s.metric.side}=${s.value[1]}`).sort();
    // Each probe pushed one successful session per IP plus a failed one to the new IP.
    assert.deepEqual(got, [`eu/p-eu/${NEW_IP}/new=2`, `eu/p-eu/${OLD_IP}/old=1`, `us/p-us/${NEW_IP}/new=2`, `us/p-us/${OLD_IP}/old=1`].sort());

    const total = await prom.vector('mailprobe_smtp_checks_total{result="temp_fail"}');
    assert.equal(total.length, 2, 'counters arrive with their _total name');
    const batches = await prom.vector('mailprobe_collector_batches_total{result="accepted"}');
    assert.equal(batches[0]?.value[1], '2');
  } finally {
    await prom.stop();
    await c.close();
  }
});
