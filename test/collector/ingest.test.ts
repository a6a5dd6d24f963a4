/**
 * Time-dependent behaviour of the collector with an injected clock: the window gauge, and the
 * removal of a silent probe's gauges.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { batchOf, mixedResults, NEW_IP, OLD_IP } from '../support/results.js';

test('mailprobe_cutover_window_active follows the plan window', async () => {
  let now = Date.parse('2026-12-04T19:59:59Z');
  const plan = testPlan({ cutover: { window: { start: '2026-12-04T20:00:00Z', end: '2026-12-05T02:00:00Z' } } });
  const c = await startTestCollector(plan, { now: () => now });
  try {
    assert.equal(await c.sample('mailprobe_cutover_window_active'), 0);
    now = Date.parse('2026-12-04T20:00:00Z');
    assert.equal(await c.sample('mailprobe_cutover_window_active'), 1);
    now = Date.parse('2026-12-05T02:00:00Z');
    assert.equal(await c.sample('mailprobe_cutover_window_active'), 0);
    assert.equal(await c.sample('mailprobe_cutover_window_start_timestamp_seconds'), Date.parse('2026-12-04T20:00:00Z') / 1000);
    assert.equal(await c.sample('mailprobe_cutover_window_end_timestamp_seconds'), Date.parse('2026-12-05T02:00:00Z') / 1000);
  } finally {
    await c.close();
  }
});

test('mailprobe_server_info names each server of the plan (the IP when it has no name)', async () => {
  const plan = testPlan({
    cutover: {
      servers: [
        { ip: '203.0.113.10', side: 'old', name: 'provider-a' },
        { ip: '198.51.100.20', side: 'new' },
      ],
    },
  });
  const c = await startTestCollector(plan);
  try {
    assert.equal(await c.sample('mailprobe_server_info', { ip: '203.0.113.10', side: 'old', server_name: 'provider-a' }), 1);
    assert.equal(await c.sample('mailprobe_server_info', { ip: '198.51.100.20', side: 'new', server_name: '198.51.100.20' }), 1);
  } finally {
    await c.close();
  }
});

test("a silent probe's gauges are removed after probe_stale_after; its last push stays; it comes back", async () => {
  let now = Date.now();
  const c = await startTestCollector(testPlan({ collector: { probe_stale_after: '5m' } }), { now: () => now, sweepIntervalMs: 20 });
  const tick = () => new Promise((r) => setTimeout(r, 60));
  try {
    await c.push(batchOf(mixedResults(now), { id: 'p-eu', region: 'eu' }));
    await c.push(batchOf(mixedResults(now), { id: 'p-us', region: 'us' }));
    const up = (probe: string) => c.sample('mailprobe_smtp_up', { probe, ip: OLD_IP });
    const side = (probe: string) => c.sample('mailprobe_dns_answer_side', { probe, resolver: '8.8.8.8', type: 'A' });
    assert.equal(await up('p-eu'), 1);
    assert.equal(await side('p-eu'), 1);

    now += 4 * 60_000;
    await c.push(batchOf(mixedResults(now), { id: 'p-us', region: 'us' }));
    now += 2 * 60_000;
    await tick();
    assert.equal(await up('p-eu'), undefined, 'p-eu silent for 6m: smtp_up removed');
    assert.equal(await side('p-eu'), undefined, 'p-eu silent for 6m: answer side removed');
    assert.equal(await up('p-us'), 1, 'p-us pushed 2m ago: kept');
    assert.ok((await c.sample('mailprobe_probe_last_push_timestamp_seconds', { probe: 'p-eu' })) !== undefined, 'last push kept for the silence alert');
    assert.ok((await c.sample('mailprobe_smtp_checks_total', { probe: 'p-eu', ip: NEW_IP })) !== undefined, 'counters are not removed');

    await c.push(batchOf(mixedResults(now), { id: 'p-eu', region: 'eu' }));
    assert.equal(await up('p-eu'), 1, 'back after pushing again');
    assert.equal(await side('p-eu'), 1);
  } finally {
    await c.close();
  }
});

test('the answer side is one-of: a switch removes the old side series', async () => {
  const c = await startTestCollector();
  try {
    const dns = mixedResults().find((r) => r.type === 'dns' && r.resolver === '8.8.8.8')!;
    await c.push(batchOf([{ ...dns, side: 'old' } as typeof dns]));
    const labels = { probe: 'p-eu', resolver: '8.8.8.8', type: 'A' };
    assert.equal(await c.sample('mailprobe_dns_answer_side', { ...labels, side: 'old' }), 1);
    await c.push(batchOf([{ ...dns, side: 'new' } as typeof dns]));
    assert.equal(await c.sample('mailprobe_dns_answer_side', { ...labels, side: 'new' }), 1);
    assert.equal(await c.sample('mailprobe_dns_answer_side', { ...labels, side: 'old' }), undefined);
  } finally {
    await c.close();
  }
});
