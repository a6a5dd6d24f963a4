/**
 * The probe's /healthz tells the truth: a real probe pushing to a real collector on loopback is
 * healthy (200); with the collector stopped it turns degraded (503, reason push_stalled) once
 * probes.push.degraded_after has passed, and healthy again when the collector is back. A spool
 * near its limit and checks that fail internally are degraded too, each with its reason. /livez
 * stays 200 throughout (liveness and readiness probes use it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { buildCollector, type Collector } from '../../collector/app.js';
import type { PlanConfig } from '../../config/schema.js';
import { register } from '../../probe/checks/index.js';
import { createProbe, type Probe } from '../../probe/runtime.js';
import type { AuthResult } from '../../protocol/results.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { countingCheck } from './fixtures/test-checks.js';
import { captureLogger, tempDir, waitFor } from './support.js';

interface Health {
  status: number;
  ok: boolean;
  reasons: { code: string; message: string }[];
}

async function health(probe: Probe, path = '/healthz'): Promise<Health> {
  const r = await request(`${probe.healthUrl}${path}`);
  const body = (await r.body.json()) as Omit<Health, 'status'>;
  return { status: r.statusCode, ok: body.ok, reasons: body.reasons };
}

function plan(collectors: string[], push: Record<string, unknown> = {}): PlanConfig {
  return testPlan({
    probes: {
      interval: '100ms',
      window_interval: '100ms',
      timeout: '100ms',
      push: { collectors, batch_max_results: 5, batch_max_age: '100ms', retry_min: '50ms', retry_max: '200ms', request_timeout: '500ms', ...push },
    },
  });
}

async function collectorOn(port: number): Promise<{ c: Collector; url: string }> {
  const c = await buildCollector({ plan: testPlan(), registry: new Registry(), logger: false });
  await c.app.listen({ host: '127.0.0.1', port });
  const addr = c.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('collector did not bind');
  return { c, url: `http://127.0.0.1:${addr.port}` };
}

test('collector stopped: degraded (503, push_stalled) after degraded_after, not before; collector back: healthy', async () => {
  let { c, url } = await collectorOn(0);
  const port = Number(new URL(url).port);
  const { dir, cleanup } = tempDir();
  const probe = createProbe({
    plan: plan([url], { degraded_after: '1500ms' }),
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 3 }) },
    spoolDir: dir,
    logger: captureLogger().log,
    healthListen: '127.0.0.1:0',
  });
  try {
    await probe.start();
    assert.ok(await waitFor(async () => (await health(probe)).status === 200 && probe.stats().batches >= 2, 5000));
    assert.deepEqual((await health(probe)).reasons, []);

    // The clock starts at the last batch a collector took, just before the stop.
    await c.app.close();
    await sleep(700);
    assert.equal((await health(probe)).status, 200, 'batches have waited less than degraded_after: still healthy');
    assert.ok(await waitFor(async () => (await health(probe)).status === 503, 5000), 'degraded once batches waited longer than degraded_after');
    const down = await health(probe);
    assert.equal(down.ok, false);
    assert.deepEqual(
      down.reasons.map((r) => r.code),
      ['push_stalled'],
    );
    assert.match(
      down.reasons[0]!.message,
      /^no collector has accepted a batch for (1\.[5-9]|[2-9](\.\d)?) s while batches wait \(limit 1\.5 s, probes\.push\.degraded_after\)$/,
    );
    const live = await health(probe, '/livez');
    assert.equal(live.status, 200, '/livez does not follow the collector');

    ({ c } = await collectorOn(port));
    assert.ok(await waitFor(async () => (await health(probe)).status === 200, 5000), 'healthy again once the collector takes batches');
    assert.deepEqual((await health(probe)).reasons, []);
  } finally {
    await probe.stop({ flushMs: 0 });
    await c.app.close();
    cleanup();
  }
});

test('a spool near its limit is degraded (spool_near_full) with its size', async () => {
  const { dir, cleanup } = tempDir();
  const probe = createProbe({
    // Nothing listens on port 9: the spool fills; push_stalled is kept out of the way.
    plan: plan(['http://127.0.0.1:9'], { spool_max_bytes: '24KiB', degraded_after: '1h' }),
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 3, perRun: 2 }) },
    spoolDir: dir,
    logger: captureLogger().log,
    healthListen: '127.0.0.1:0',
  });
  try {
    await probe.start();
    assert.equal((await health(probe)).status, 200);
    assert.ok(await waitFor(async () => (await health(probe)).status === 503, 10_000), `spool at ${probe.stats().spool.bytes} bytes`);
    const h = await health(probe);
    assert.deepEqual(
      h.reasons.map((r) => r.code),
      ['spool_near_full'],
    );
    const bytes = Number(
      /^the spool holds (\d+) bytes, (\d+) % of probes\.push\.spool_max_bytes \(24576\); at the limit the oldest batches are dropped$/.exec(
        h.reasons[0]!.message,
      )?.[1],
    );
    assert.ok(bytes >= 0.9 * 24576, h.reasons[0]!.message);
  } finally {
    await probe.stop({ flushMs: 0 });
    cleanup();
  }
});

test('a check failing internally is degraded (checks_internal) naming its target; fixed, healthy again', async () => {
  let broken = false;
  const { dir, cleanup } = tempDir();
  const check = register<'auth', null>({
    type: 'auth',
    targets: () => ['s0', 's1'].map((s) => ({ key: s, target: { method: 'dkim' as const, subject: s }, settings: null })),
    async run(target, _settings, ctx): Promise<AuthResult> {
      if (broken && target.subject === 's1') throw new TypeError('cannot read properties of undefined (reading "txt")');
      return { type: 'auth', method: 'dkim', subject: target.subject, pass: true, ok: true, startedAt: ctx.now(), durationSeconds: 0.001 };
    },
  });
  const probe = createProbe({
    plan: plan([]),
    id: 'p-eu',
    region: 'eu',
    registry: { auth: check },
    spoolDir: dir,
    logger: captureLogger().log,
    healthListen: '127.0.0.1:0',
  });
  try {
    await probe.start();
    assert.ok(await waitFor(() => (probe.runs()['auth/s1'] ?? 0) >= 2, 5000));
    assert.equal((await health(probe)).status, 200);
    broken = true;
    assert.ok(await waitFor(async () => (await health(probe)).status === 503, 5000));
    const h = await health(probe);
    assert.deepEqual(
      h.reasons.map((r) => r.code),
      ['checks_internal'],
    );
    assert.equal(
      h.reasons[0]!.message,
      '1 target fails internally (a bug or bad config): auth dkim s1 (check_threw: the check threw (a bug or bad config): cannot read properties of undefined (reading "txt"))',
    );
    broken = false;
    assert.ok(await waitFor(async () => (await health(probe)).status === 200, 5000), 'the target recovered: healthy');
  } finally {
    await probe.stop({ flushMs: 0 });
    cleanup();
  }
});
