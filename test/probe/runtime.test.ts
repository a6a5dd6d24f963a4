import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { request } from 'undici';
import { createProbe, type Probe } from '../../probe/runtime.js';
import type { AuthResult } from '../../protocol/results.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { countingCheck } from './fixtures/test-checks.js';
import { captureLogger, startProxy, tempDir, waitFor, type LogLine } from './support.js';

/** Compressed timeline: checks every 100 ms, batches of 5 or 150 ms, retries from 50 ms to 300 ms. */
function fastPlan(collectors: string[], push: Record<string, unknown> = {}) {
  return testPlan({
    probes: {
      interval: '100ms',
      window_interval: '100ms',
      timeout: '100ms',
      push: { collectors, batch_max_results: 5, batch_max_age: '150ms', retry_min: '50ms', retry_max: '300ms', request_timeout: '1s', ...push },
    },
  });
}

interface Running {
  probe: Probe;
  produced: AuthResult[];
  lines: LogLine[];
}

function probeFor(plan: ReturnType<typeof fastPlan>, spoolDir: string, o: { token?: string; perRun?: number } = {}): Running {
  const produced: AuthResult[] = [];
  const { log, lines } = captureLogger();
  const probe = createProbe({
    plan,
    id: 'p-eu',
    region: 'eu',
    token: o.token ?? tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 3, perRun: o.perRun ?? 1, produced: (rs) => produced.push(...rs) }) },
    spoolDir,
    logger: log,
    healthListen: '127.0.0.1:0',
  });
  return { probe, produced, lines };
}

const accepted = async (c: TestCollector) => (await c.sample('mailprobe_collector_batches_total', { result: 'accepted' })) ?? 0;
const applied = async (c: TestCollector) => (await c.sample('mailprobe_collector_results_total')) ?? 0;

async function selfMetric(probe: Probe, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await request(`${probe.healthUrl}/metrics`)).body.text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('collector down for a while, then back: every batch arrives exactly once, nothing lost, nothing counted twice', async () => {
  const collector = await startTestCollector();
  const proxy = await startProxy(collector.url, { mode: 'refuse' });
  const { dir, cleanup } = tempDir();
  const { probe, produced } = probeFor(fastPlan([proxy.url]), dir);
  try {
    await probe.start();
    await sleep(1500);
    // While down: spooled, retried, visible on the probe's own endpoint.
    assert.ok(probe.stats().spool.batches >= 5, `${probe.stats().spool.batches} batches spooled`);
    assert.equal(await accepted(collector), 0);
    // Down for 1.5 s, longer than degraded_after (3 × retry_max = 900 ms here): degraded, and why.
    const health = await request(`${probe.healthUrl}/healthz`);
    assert.equal(health.statusCode, 503);
    const body = (await health.body.json()) as { ok: boolean; reasons: { code: string; message: string }[] };
    assert.equal(body.ok, false);
    assert.deepEqual(
      body.reasons.map((r) => r.code),
      ['push_stalled'],
    );
    assert.match(
      body.reasons[0]!.message,
      /^no collector has accepted a batch for \d+(\.\d)? s while batches wait \(limit 0\.9 s, probes\.push\.degraded_after\)$/,
    );
    assert.ok(((await selfMetric(probe, 'mailprobe_probe_spooled_batches', { probe: 'p-eu' })) ?? 0) >= 5);
    assert.ok(((await selfMetric(probe, 'mailprobe_probe_spooled_bytes', { probe: 'p-eu' })) ?? 0) > 0);
    assert.ok(((await selfMetric(probe, 'mailprobe_probe_pushes_total', { result: 'error' })) ?? 0) >= 2);
    assert.ok(((await selfMetric(probe, 'mailprobe_probe_check_runs_total', { type: 'auth', result: 'success' })) ?? 0) >= 30);
    assert.ok(((await selfMetric(probe, 'mailprobe_probe_check_duration_seconds_count', { type: 'auth' })) ?? 0) >= 30);
    const exposition = await (await request(`${probe.healthUrl}/metrics`)).body.text();
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);

    proxy.setMode('up');
    await sleep(700);
    assert.equal((await request(`${probe.healthUrl}/healthz`)).statusCode, 200, 'healthy again once the collector takes batches');
    await probe.stop({ flushMs: 3000 });

    const stats = probe.stats();
    assert.equal(stats.spool.batches, 0, 'the spool is empty after recovery');
    assert.equal(stats.spool.dropped, 0);
    assert.equal(stats.results, produced.length);
    assert.ok(produced.length >= 40, `${produced.length} results produced`);
    assert.equal(await applied(collector), produced.length, 'results applied at the collector = results produced');
    assert.equal(await accepted(collector), stats.batches, 'every batch accepted once');
    assert.equal(await collector.sample('mailprobe_checks_total', { probe: 'p-eu', type: 'auth', result: 'success' }), produced.length);
    assert.equal(await collector.sample('mailprobe_probe_spool_dropped_batches', { probe: 'p-eu' }), 0);
  } finally {
    await probe.stop({ flushMs: 0 });
    await proxy.close();
    await collector.close();
    cleanup();
  }
});

test('the collector applied a batch but its answer was lost: the retry is a duplicate, applied once', async () => {
  const collector = await startTestCollector();
  const proxy = await startProxy(collector.url, { mode: 'lose-replies' });
  const { dir, cleanup } = tempDir();
  const { probe, produced } = probeFor(fastPlan([proxy.url]), dir);
  try {
    await probe.start();
    await sleep(800);
    assert.ok((await accepted(collector)) >= 1, 'the collector took the first pushes');
    assert.equal(probe.stats().spool.batches, probe.stats().batches, 'but the probe never heard so');
    proxy.setMode('up');
    await sleep(500);
    await probe.stop({ flushMs: 3000 });
    const dup = (await collector.sample('mailprobe_collector_batches_total', { result: 'duplicate' })) ?? 0;
    assert.ok(dup >= 1, `${dup} duplicates answered`);
    assert.equal(await applied(collector), produced.length, 'each result applied once');
    assert.equal(await accepted(collector), probe.stats().batches);
    assert.equal(probe.stats().spool.batches, 0);
  } finally {
    await probe.stop({ flushMs: 0 });
    await proxy.close();
    await collector.close();
    cleanup();
  }
});

test('HA pair: each collector gets every batch; one down does not hold back the other', async () => {
  const a = await startTestCollector();
  const b = await startTestCollector();
  const proxyB = await startProxy(b.url, { mode: 'refuse' });
  const { dir, cleanup } = tempDir();
  const { probe, produced } = probeFor(fastPlan([a.url, proxyB.url]), dir);
  try {
    await probe.start();
    await sleep(1000);
    // A keeps up with every sealed batch while B is down.
    assert.ok(await waitFor(async () => (await accepted(a)) === probe.stats().batches && probe.stats().batches >= 5, 2000), 'A has every batch sealed so far');
    assert.equal(await accepted(b), 0);
    assert.ok(probe.stats().spool.batches >= 5, 'batches wait in the spool for B');

    proxyB.setMode('up');
    await sleep(500);
    await probe.stop({ flushMs: 3000 });
    const stats = probe.stats();
    assert.equal(stats.spool.batches, 0);
    for (const c of [a, b]) {
      assert.equal(await applied(c), produced.length);
      assert.equal(await accepted(c), stats.batches);
    }
  } finally {
    await probe.stop({ flushMs: 0 });
    await proxyB.close();
    await a.close();
    await b.close();
    cleanup();
  }
});

test('bad token: logged as an error naming the token variable, retried slowly (no hot loop), batches kept', async () => {
  const collector = await startTestCollector();
  const { dir, cleanup } = tempDir();
  const { probe, lines } = probeFor(fastPlan([collector.url], { retry_min: '100ms', retry_max: '400ms' }), dir, { token: 'not-the-token' });
  try {
    await probe.start();
    await sleep(2000);
    const attempts = (await collector.sample('mailprobe_collector_rejections_total', { code: 'unauthorized' })) ?? 0;
    // At most one attempt per 200 ms (half the 400 ms cap) plus the first: a hot loop would make hundreds.
    assert.ok(attempts >= 2 && attempts <= 12, `${attempts} attempts in 2 s`);
    const err = lines.find((l) => l.code === 'push_unauthorized');
    assert.ok(err, 'an error line with code push_unauthorized');
    assert.equal(err.level, 50);
    assert.match(err.msg, /MAILPROBE_TOKEN/);
    assert.match(err.msg, /401/);
    assert.ok(lines.filter((l) => l.code === 'push_unauthorized').length <= 2, 'not one line per attempt');
    assert.equal(await accepted(collector), 0);
    assert.ok(probe.stats().spool.batches >= 5, 'nothing dropped: a fixed token delivers everything');
    assert.equal(probe.stats().spool.dropped, 0);
  } finally {
    await probe.stop({ flushMs: 0 });
    await collector.close();
    cleanup();
  }
});

test('spool full while the collector is down: the oldest batches dropped and counted, the newest delivered', async () => {
  const collector = await startTestCollector();
  const proxy = await startProxy(collector.url, { mode: 'refuse' });
  const { dir, cleanup } = tempDir();
  const { probe, produced, lines } = probeFor(fastPlan([proxy.url], { spool_max_bytes: '6KiB' }), dir, { perRun: 2 });
  try {
    await probe.start();
    await sleep(1500);
    const dropped = probe.stats().spool.dropped;
    assert.ok(dropped > 0, 'batches were dropped');
    // The limit, plus at most the batch on its way to the collector (never dropped mid-push).
    assert.ok(probe.stats().spool.bytes <= 8 * 1024, `${probe.stats().spool.bytes} bytes`);
    assert.ok(lines.some((l) => l.code === 'spool_full'));
    // Checks keep running, so the count may grow between the two reads.
    const counted = (await selfMetric(probe, 'mailprobe_probe_spool_dropped_batches_total', { probe: 'p-eu' })) ?? -1;
    assert.ok(counted >= dropped && counted <= probe.stats().spool.dropped, `metric ${counted}, probe ${dropped}`);
    proxy.setMode('up');
    await sleep(500);
    await probe.stop({ flushMs: 3000 });
    const stats = probe.stats();
    assert.equal(stats.spool.batches, 0);
    const got = await accepted(collector);
    assert.equal(got + stats.spool.dropped, stats.batches, 'every batch either delivered or counted as dropped');
    const got2 = await applied(collector);
    assert.ok(
      got2 < produced.length,
      `applied ${got2}, produced ${produced.length}, dropped ${stats.spool.dropped}, batches ${stats.batches}, results ${stats.results}`,
    );
    assert.equal(await collector.sample('mailprobe_probe_spool_dropped_batches', { probe: 'p-eu' }), stats.spool.dropped, 'the collector sees the drop count');
  } finally {
    await probe.stop({ flushMs: 0 });
    await proxy.close();
    await collector.close();
    cleanup();
  }
});

test('restart with batches left in the spool: replayed with the same ids, applied once', async () => {
  const collector = await startTestCollector();
  const proxy = await startProxy(collector.url, { mode: 'refuse' });
  const { dir, cleanup } = tempDir();
  const first = probeFor(fastPlan([proxy.url]), dir);
  const second = probeFor(fastPlan([proxy.url]), dir);
  try {
    await first.probe.start();
    await sleep(800);
    await first.probe.stop({ flushMs: 100 });
    const left = first.probe.stats();
    assert.ok(left.spool.batches >= 3, 'batches left for the next start');
    proxy.setMode('up');
    await second.probe.start();
    await sleep(300);
    await second.probe.stop({ flushMs: 3000 });
    const total = first.produced.length + second.produced.length;
    assert.equal(await applied(collector), total);
    assert.equal(await accepted(collector), left.batches + second.probe.stats().batches);
    assert.equal(second.probe.stats().spool.batches, 0);
  } finally {
    await first.probe.stop({ flushMs: 0 });
    await second.probe.stop({ flushMs: 0 });
    await proxy.close();
    await collector.close();
    cleanup();
  }
});

test('a batch one collector rejects for good (422) is dropped for it, logged and counted; the other collector still gets it', async () => {
  const strict = await startTestCollector(testPlan({ collector: { max_series_per_probe: 1 } }));
  const ok = await startTestCollector();
  const { dir, cleanup } = tempDir();
  const { probe, produced, lines } = probeFor(fastPlan([strict.url, ok.url]), dir);
  try {
    await probe.start();
    await sleep(800);
    await probe.stop({ flushMs: 3000 });
    const stats = probe.stats();
    assert.equal(stats.spool.batches, 0, 'rejected batches do not clog the spool');
    assert.equal(await applied(ok), produced.length);
    assert.equal(await accepted(strict), 0);
    const rejected = (await strict.sample('mailprobe_collector_rejections_total', { code: 'series_limit' })) ?? 0;
    assert.equal(rejected, stats.batches, 'each batch tried once at the strict collector, not retried');
    const logged = lines.filter((l) => l.code === 'push_rejected');
    assert.equal(logged.length, stats.batches);
    assert.equal(logged[0]?.status, 422);
    assert.match(String(logged[0]?.reply), /series_limit/);
  } finally {
    await probe.stop({ flushMs: 0 });
    await strict.close();
    await ok.close();
    cleanup();
  }
});

test('stop waits for running checks and pushes their results', async () => {
  const collector = await startTestCollector();
  const { dir, cleanup } = tempDir();
  const produced: AuthResult[] = [];
  const plan = testPlan({
    probes: { interval: '10s', window_interval: '10s', timeout: '2s', push: { collectors: [collector.url], batch_max_age: '5s' } },
  });
  const probe = createProbe({
    plan,
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 2, delayMs: 400, produced: (rs) => produced.push(...rs) }) },
    spoolDir: dir,
    logger: captureLogger().log,
    random: () => 0,
    healthListen: '127.0.0.1:0',
  });
  try {
    await probe.start();
    await sleep(100);
    assert.equal(probe.stats().checksInFlight, 2);
    const url = probe.healthUrl;
    const stopping = probe.stop();
    const health = await request(`${url}/healthz`);
    assert.equal(health.statusCode, 503, '/healthz says so while the probe is stopping');
    assert.equal(((await health.body.json()) as { state: string }).state, 'stopping');
    await stopping;
    assert.equal(produced.length, 2, 'both runs finished');
    assert.equal(await applied(collector), 2, 'and their results were pushed before stop returned');
  } finally {
    await probe.stop();
    await collector.close();
    cleanup();
  }
});

test('a logger that already binds probe and region (the lab) gets each key once per line', async () => {
  const { dir, cleanup } = tempDir();
  const raw: string[] = [];
  const { pino } = await import('pino');
  const base = pino({ level: 'debug' }, { write: (s: string) => void raw.push(s) }).child({ part: 'probe', probe: 'p-eu' });
  const probe = createProbe({
    plan: fastPlan([]),
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 1 }) },
    spoolDir: dir,
    logger: base,
  });
  try {
    await probe.start();
    await probe.stop({ graceMs: 200, flushMs: 200 });
    assert.ok(raw.length >= 2, `log lines: ${raw.length}`);
    for (const line of raw) {
      assert.equal(line.match(/"probe":/g)?.length, 1, line);
      assert.equal(line.match(/"region":/g)?.length, 1, line);
      assert.equal((JSON.parse(line) as { region: string }).region, 'eu');
    }
  } finally {
    cleanup();
  }
});

test('the collector rate-limits the probe (429 + Retry-After): the pusher waits as told (no retry storm) and everything arrives once', async () => {
  const collector = await startTestCollector(testPlan({ collector: { push_rate: 1, push_burst: 1 } }));
  const { dir, cleanup } = tempDir();
  const { probe, produced } = probeFor(fastPlan([collector.url], { retry_min: '50ms', retry_max: '300ms' }), dir);
  try {
    await probe.start();
    await sleep(3500);
    const limited = (await collector.sample('mailprobe_collector_rejections_total', { code: 'rate_limited' })) ?? 0;
    // Batches are sealed every ~150 ms, so the probe wants to push ~7/s. Honouring Retry-After
    // (1 s) it is refused at most about once a second; retrying at 50–300 ms it would be refused
    // ten times or more in 3.5 s.
    assert.ok(limited >= 1 && limited <= 5, `${limited} pushes refused with 429 in 3.5 s`);
    assert.ok((await accepted(collector)) >= 2);
    await probe.stop({ flushMs: 0 });
    // Nothing lost: what is applied plus what is still spooled is what was produced, nothing twice.
    const spooled = probe.stats().spool;
    assert.equal(spooled.dropped, 0);
    assert.ok((await applied(collector)) <= produced.length);
    assert.ok((await applied(collector)) >= 2);
  } finally {
    await probe.stop({ flushMs: 0 });
    await collector.close();
    cleanup();
  }
});
