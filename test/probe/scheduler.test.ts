import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CheckContext } from '../../probe/check.js';
import { register, type CheckRegistry } from '../../probe/checks/index.js';
import { CheckFailure } from '../../probe/errors.js';
import { ABORT_GRACE_MS, Scheduler } from '../../probe/scheduler.js';
import type { AuthResult, CheckResult } from '../../protocol/results.js';
import { testPlan } from '../../bench/lib/plan.js';
import { countingCheck } from './fixtures/test-checks.js';
import { captureLogger, timerLag, waitFor } from './support.js';

const HOUR = 3_600_000;
const pastWindow = () => ({ start: new Date(Date.now() - 3 * HOUR).toISOString(), end: new Date(Date.now() - 2 * HOUR).toISOString() });

function scheduler(registry: CheckRegistry, probes: Record<string, unknown>, opts: { window?: { start: string; end: string }; random?: () => number } = {}) {
  const plan = testPlan({
    probes: { window_interval: probes.interval, timeout: probes.window_interval ?? probes.interval, ...probes },
    ...(opts.window ? { cutover: { window: opts.window } } : {}),
  });
  const { log, lines } = captureLogger();
  const results: CheckResult[] = [];
  const s = new Scheduler({
    plan,
    registry,
    probe: { id: 'p-eu', region: 'eu' },
    log,
    now: Date.now,
    onResults: (rs) => results.push(...rs),
    ...(opts.random ? { random: opts.random } : {}),
  });
  return { s, results, lines, plan };
}

/**
 * How late each run started against its due time: the first is due at `first`, each next one an
 * interval after the previous due time, except after a run that fell more than an interval
 * behind (the scheduler skips rather than catches up: the next is due an interval after it).
 */
function lateness(times: number[], first: number, interval: number): number[] {
  let due = first;
  return times.map((t, k) => {
    if (k > 0) due = times[k - 1]! - due > interval ? times[k - 1]! + interval : due + interval;
    return t - due;
  });
}

/** Returns 0, 0.25, 0.5, 0.75, ... so target i starts at i/4 of the interval. */
const quarters = () => {
  let i = 0;
  return () => (i++ % 4) / 4;
};

test('outside the window: every target at probes.interval, first run at its offset within the interval', async () => {
  const runs = new Map<string, number[]>();
  const check = countingCheck({ targets: 4, onRun: (key, ctx) => runs.set(key, [...(runs.get(key) ?? []), ctx.now()]) });
  const { s } = scheduler({ auth: check }, { interval: '400ms', window_interval: '50ms' }, { window: pastWindow(), random: quarters() });
  const lag = timerLag();
  const t0 = Date.now();
  s.start();
  // Until every target ran three times (due by +1.1 s), however slow the machine is.
  const ran = await waitFor(() => [0, 1, 2, 3].every((i) => (runs.get(`s${i}`)?.length ?? 0) >= 3), 15_000);
  await s.stop(100);
  // A run may be late by as much as this process's timers were (a busy machine), never early.
  const slack = 100 + lag.stop();
  assert.ok(ran, `three runs of every target: ${JSON.stringify([...runs.entries()].map(([k, v]) => [k, v.length]))}`);
  assert.deepEqual([...runs.keys()].sort(), ['s0', 's1', 's2', 's3']);
  for (let i = 0; i < 4; i++) {
    const times = runs.get(`s${i}`) ?? [];
    // Run k is due at offset i/4 of the interval + k intervals.
    lateness(times, t0 + i * 100, 400).forEach((late, k) => {
      assert.ok(
        late >= -5 && late < slack,
        `s${i} run ${k} at +${times[k]! - t0} ms, ${late.toFixed(0)} ms late (allowed ${slack.toFixed(0)}); runs at ${times.map((t) => t - t0).join(',')}`,
      );
    });
  }
});

test('inside the window: window_interval; when the window ends the interval goes back to probes.interval', async () => {
  const times: number[] = [];
  const check = countingCheck({ targets: 1, onRun: (_k, ctx) => times.push(ctx.now()) });
  const lag = timerLag();
  const t0 = Date.now();
  const window = { start: new Date(t0 - HOUR).toISOString(), end: new Date(t0 + 600).toISOString() };
  const { s } = scheduler({ auth: check }, { interval: '2s', window_interval: '100ms' }, { window, random: () => 0 });
  s.start();
  await sleep(1500);
  await s.stop(100);
  // A run may be late by as much as this process's timers were (a busy machine), never early.
  const slack = 100 + lag.stop();
  // Runs due in the window (at +0 … +500) may start up to `slack` late; the 2 s interval after
  // the window puts the next one past +2 s.
  const inWindow = times.filter((t) => t < t0 + 600 + slack);
  const after = times.filter((t) => t >= t0 + 600 + slack);
  assert.ok(inWindow.length >= 3 && inWindow.length <= 6, `${inWindow.length} runs in the 600 ms window at 100 ms (at a 2 s interval: 1)`);
  lateness(inWindow, t0, 100).forEach((late, k) => {
    assert.ok(
      late >= -5 && late < slack,
      `run ${k} ${late.toFixed(0)} ms late (allowed ${slack.toFixed(0)}); runs at ${inWindow.map((t) => t - t0).join(',')}`,
    );
  });
  assert.equal(after.length, 0, `runs after the window: ${after.map((t) => t - t0).join(',')}`);
});

test('a check over its timeout is aborted through ctx.signal; its own failure wins within the grace', async () => {
  let reason: unknown;
  const check = register<'auth', null>({
    type: 'auth',
    targets: () => [{ key: 'slow', target: { method: 'dkim', subject: 'slow' }, settings: null }],
    timeoutMs: () => 150,
    async run(target, _s, ctx) {
      const startedAt = ctx.now();
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      reason = ctx.signal.reason;
      return {
        type: 'auth',
        method: 'dkim',
        subject: target.subject,
        pass: false,
        startedAt,
        durationSeconds: 0.15,
        ok: false,
        phase: 'lookup',
        errorClass: 'timeout',
        code: 'dns_timeout',
        message: 'own',
      };
    },
  });
  const { s, results } = scheduler({ auth: check }, { interval: '10s', timeout: '5s' }, { random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length === 1, 2000));
  await s.stop(100);
  assert.equal((reason as Error).name, 'TimeoutError');
  const r = results[0] as AuthResult;
  assert.equal(r.code, 'dns_timeout');
  assert.equal(r.phase, 'lookup');
});

test('a check that ignores its abort signal still gets a timeout result and frees its concurrency slot', async () => {
  const started: string[] = [];
  const check = register<'auth', null>({
    type: 'auth',
    targets: () => ['a', 'b'].map((k) => ({ key: k, target: { method: 'dkim', subject: k }, settings: null })),
    run(target) {
      started.push(target.subject);
      return new Promise(() => {}); // never settles, ignores the signal
    },
  });
  const { s, results } = scheduler({ auth: check }, { interval: '10s', timeout: '200ms', concurrency: 1 }, { random: () => 0 });
  const t0 = Date.now();
  s.start();
  assert.ok(await waitFor(() => results.length === 2, 3000), `results: ${results.length}`);
  const elapsed = Date.now() - t0;
  await s.stop(50);
  assert.deepEqual(started.sort(), ['a', 'b']);
  for (const r of results as AuthResult[]) {
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'timeout');
    assert.equal(r.code, 'check_timeout');
    assert.equal(r.method, 'dkim');
    assert.ok(['a', 'b'].includes(r.subject));
    assert.ok(r.durationSeconds >= 0.2 && r.durationSeconds < 0.2 + (ABORT_GRACE_MS + 200) / 1000, `duration ${r.durationSeconds}`);
  }
  // One at a time: the second could only start after the first timed out.
  assert.ok(elapsed >= 2 * 200, `both done after ${elapsed} ms`);
});

test('concurrency limit: never more than probes.concurrency checks at once, and all of them run', async () => {
  let now = 0;
  let max = 0;
  const check = countingCheck({
    targets: 6,
    delayMs: 120,
    onRun: () => {
      now++;
      max = Math.max(max, now);
      setTimeout(() => now--, 120);
    },
  });
  const { s, results } = scheduler({ auth: check }, { interval: '10s', concurrency: 2 }, { random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length === 6, 3000));
  await s.stop(100);
  assert.equal(max, 2);
  assert.equal(s.inFlight, 0);
});

test('a check that throws (sync or async) becomes a failed result of class internal, logged, and keeps being scheduled', async () => {
  let calls = 0;
  const check = register<'auth', null>({
    type: 'auth',
    targets: () => [{ key: 'bug', target: { method: 'dkim', subject: 'bug' }, settings: null }],
    run() {
      calls++;
      if (calls === 1) throw new Error('sync boom');
      return Promise.reject(new TypeError('async boom'));
    },
  });
  const { s, results, lines } = scheduler({ auth: check }, { interval: '100ms' }, { window: pastWindow(), random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length >= 2, 2000));
  await s.stop(100);
  const [a, b] = results as AuthResult[];
  assert.equal(a?.errorClass, 'internal');
  assert.equal(a?.code, 'check_threw');
  assert.match(a?.message ?? '', /sync boom/);
  assert.match(b?.message ?? '', /async boom/);
  assert.equal(a?.subject, 'bug');
  assert.ok(lines.some((l) => l.code === 'check_threw' && l.level >= 50));
});

test('an invalid result is replaced by a failed result naming the schema problem', async () => {
  const check = register<'auth', null>({
    type: 'auth',
    targets: () => [{ key: 'x', target: { method: 'dkim', subject: 'x' }, settings: null }],
    run: async (_t, _s, ctx) =>
      ({ type: 'auth', method: 'dkim', subject: '', pass: true, ok: true, startedAt: ctx.now(), durationSeconds: 0 }) as unknown as AuthResult,
  });
  const { s, results } = scheduler({ auth: check }, { interval: '10s' }, { random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length === 1, 2000));
  await s.stop(100);
  const r = results[0] as AuthResult;
  assert.equal(r.code, 'invalid_result');
  assert.equal(r.subject, 'x');
  assert.match(r.message ?? '', /subject/);
});

test('ctx.state persists per target across runs; ctx.history returns earlier results of the types a check reads', async () => {
  const seen: { key: string; count: number; history: number }[] = [];
  const check = register<'auth', null>({
    type: 'auth',
    reads: ['auth'],
    targets: () => ['a', 'b'].map((k) => ({ key: k, target: { method: 'dkim', subject: k }, settings: null })),
    async run(target, _s, ctx: CheckContext) {
      const count = ((ctx.state.get('count') as number | undefined) ?? 0) + 1;
      ctx.state.set('count', count);
      seen.push({ key: target.subject, count, history: ctx.history.since('auth', 0).length });
      return { type: 'auth', method: 'dkim', subject: target.subject, pass: true, ok: true, startedAt: ctx.now(), durationSeconds: 0 };
    },
  });
  const { s, results } = scheduler({ auth: check }, { interval: '100ms' }, { window: pastWindow(), random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length >= 6, 2000));
  await s.stop(100);
  for (const key of ['a', 'b']) {
    const counts = seen.filter((x) => x.key === key).map((x) => x.count);
    assert.deepEqual(
      counts,
      counts.map((_, i) => i + 1),
      `state of ${key}`,
    );
  }
  const last = seen.at(-1);
  assert.ok(last && last.history >= 4, `history had ${last?.history}`);
  assert.equal(s.history.since('auth', Date.now() + 1000).length, 0);
});

test('results no running check reads are not kept (a probe without ttl holds no dns history)', async () => {
  const { s, results } = scheduler({ auth: countingCheck({ targets: 2 }) }, { interval: '100ms' }, { window: pastWindow(), random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length >= 6, 2000));
  await s.stop(100);
  assert.equal(results.filter((r) => r.type === 'auth').length >= 6, true);
  assert.equal(s.history.since('auth', 0).length, 0);
});

test('a check that answered before and then times out gets failed results shaped like its last answers', async () => {
  let calls = 0;
  const check = register<'dns', null>({
    type: 'dns',
    targets: () => [{ key: 'r1', target: { kind: 'resolver', resolver: '127.0.0.1:53', queries: [] }, settings: null }],

    run(target, _s, ctx) {
      if (target.kind !== 'resolver') throw new Error('resolver targets only');
      calls++;
      if (calls > 1) return new Promise(() => {}); // hangs, ignoring the signal
      const base = {
        type: 'dns' as const,
        resolver: target.resolver,
        authoritative: false,
        name: 'mail.company.test',
        transport: 'udp' as const,
        rcode: 'NOERROR',
        ok: true,
        startedAt: ctx.now(),
        durationSeconds: 0.01,
      };
      return Promise.resolve([
        { ...base, qtype: 'A' as const, answers: ['127.0.0.2'], ttl: 300, side: 'old' as const },
        { ...base, qtype: 'MX' as const, answers: ['10 mail.company.test'], ttl: 300, side: 'old' as const },
      ]);
    },
  });
  const { s, results } = scheduler({ dns: check }, { interval: '150ms', timeout: '100ms' }, { window: pastWindow(), random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length >= 4, 3000), `${results.length} results`);
  await s.stop(50);
  const failed = results.slice(2, 4);
  assert.deepEqual(
    failed.map((r) => r.type === 'dns' && [r.ok, r.errorClass, r.code, r.resolver, r.name, r.qtype, r.side, r.answers.length, r.ttl]),
    [
      [false, 'timeout', 'check_timeout', '127.0.0.1:53', 'mail.company.test', 'A', 'error', 0, null],
      [false, 'timeout', 'check_timeout', '127.0.0.1:53', 'mail.company.test', 'MX', 'error', 0, null],
    ],
  );
});

test('stop() aborts every running check, and 16 checks at once add no MaxListeners warning', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const reasons: unknown[] = [];
    const check = register<'auth', null>({
      type: 'auth',
      targets: () => Array.from({ length: 16 }, (_, i) => ({ key: `s${i}`, target: { method: 'dkim' as const, subject: `s${i}` }, settings: null })),
      async run(target, _s, ctx) {
        const startedAt = ctx.now();
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        reasons.push(ctx.signal.reason);
        return {
          type: 'auth',
          method: 'dkim',
          subject: target.subject,
          pass: false,
          startedAt,
          durationSeconds: 0.1,
          ok: false,
          phase: 'lookup',
          errorClass: 'timeout',
          code: 'dns_timeout',
          message: 'stopped',
        };
      },
    });
    const { s } = scheduler({ auth: check }, { interval: '10s', timeout: '5s', concurrency: 16 }, { random: () => 0 });
    s.start();
    assert.ok(await waitFor(() => s.inFlight === 16, 2000), `in flight: ${s.inFlight}`);
    await s.stop(50);
    assert.equal(reasons.length, 16);
    for (const r of reasons) assert.equal((r as Error).message, 'probe stopping');
    await sleep(20); // warnings are emitted on the next tick
    assert.deepEqual(
      warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
      [],
    );
  } finally {
    process.off('warning', onWarning);
  }
});

test('a check that cannot run reports every target: failed results named after the target, with the precise code', async () => {
  // The ttl result needs a resolver label, which no target carried before: its failure was only logged.
  const check = register<'ttl', null>({
    type: 'ttl',
    targets: () => [{ key: 'mail', target: { name: 'mail.company.test', qtype: 'A', resolvers: ['127.0.0.1:53', 'tls://dns.example'] }, settings: null }],
    run() {
      return Promise.reject(new CheckFailure('file_unreadable', '/nonexistent.pem: ENOENT', 'setup'));
    },
  });
  const { s, results, lines } = scheduler({ ttl: check }, { interval: '10s', timeout: '1s' }, { random: () => 0 });
  s.start();
  assert.ok(await waitFor(() => results.length >= 2, 3000), `${results.length} results`);
  await s.stop(50);
  assert.deepEqual(
    results.map((r) => r.type === 'ttl' && [r.resolver, r.name, r.ok, r.errorClass, r.code, r.phase, r.message]),
    ['127.0.0.1:53', 'tls://dns.example'].map((resolver) => [
      resolver,
      'mail.company.test',
      false,
      'internal',
      'file_unreadable',
      'setup',
      'a file the check needs cannot be read: /nonexistent.pem: ENOENT',
    ]),
  );
  assert.ok(
    lines.some((l) => l.code === 'file_unreadable' && l.target === 'mail'),
    'logged with its code and target',
  );
});
