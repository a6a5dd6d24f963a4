/**
 * `mailprobe probe` as a process: usage errors exit 2 with a clear message, env settings work,
 * the health endpoint answers, results reach a real collector, SIGTERM exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { startTestCollector } from '../support/collector.js';
import { runCli } from '../support/cli.js';
import { tokenFor, writePlanFile } from '../../bench/lib/plan.js';
import { tempDir, waitFor } from '../probe/support.js';

const root = new URL('../../', import.meta.url).pathname;

function writePlan(dir: string, push: Record<string, unknown>): string {
  return writePlanFile(dir, { probes: { interval: '200ms', window_interval: '200ms', timeout: '200ms', push: { batch_max_age: '200ms', ...push } } });
}

/** `mailprobe probe …` as its own process. */
const cli = async (args: string[], env: Record<string, string | undefined> = {}) => runCli(['probe', ...args], env);

test('mailprobe probe: --help, missing options, unknown check type, a bad id and a missing token are clear errors', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const help = await cli(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--config FILE/);
    assert.match(help.stdout, /MAILPROBE_PROBE_ID/);

    const none = await cli([], { MAILPROBE_CONFIG: undefined, MAILPROBE_PROBE_ID: undefined, MAILPROBE_REGION: undefined });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /--config FILE, --id ID, --region REGION required/);

    const plan = writePlan(dir, { collectors: ['http://127.0.0.1:9'] });
    const badType = await cli(['--config', plan, '--id', 'p-eu', '--region', 'eu', '--checks', 'dns,nope'], { MAILPROBE_TOKEN: 'x' });
    assert.equal(badType.status, 2);
    assert.match(badType.stderr, /unknown check type "nope"/);

    const badId = await cli(['--config', plan, '--id', 'p eu', '--region', 'eu'], { MAILPROBE_TOKEN: 'x' });
    assert.equal(badId.status, 2);
    assert.match(badId.stderr, /--id "p eu"/);

    const noToken = await cli(['--config', plan, '--id', 'p-eu', '--region', 'eu'], { MAILPROBE_TOKEN: undefined });
    assert.equal(noToken.status, 2);
    assert.match(noToken.stderr, /set MAILPROBE_TOKEN/);
  } finally {
    cleanup();
  }
});

test('mailprobe probe from env settings: health endpoint, results at the collector, SIGTERM exits 0', async () => {
  const collector = await startTestCollector();
  const { dir, cleanup } = tempDir();
  const plan = writePlan(dir, { collectors: [collector.url], spool_dir: join(dir, 'spool') });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'cli/main.ts'), 'probe', '--check-module', 'test/probe/fixtures/test-checks.ts', '--checks', 'auth'],
    {
      cwd: root,
      env: {
        ...process.env,
        MAILPROBE_CONFIG: plan,
        MAILPROBE_PROBE_ID: 'p-eu',
        MAILPROBE_REGION: 'eu',
        MAILPROBE_TOKEN: tokenFor('p-eu'),
        MAILPROBE_HEALTH_LISTEN: '127.0.0.1:0',
        MAILPROBE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    assert.ok(await waitFor(() => /health at (http:\/\/\S+)\/healthz/.test(out), 45_000), `stdout: ${out} stderr: ${err}`);
    const url = /health at (http:\/\/\S+)\/healthz/.exec(out)?.[1] ?? '';
    const health = await request(`${url}/healthz`);
    assert.equal(health.statusCode, 200);
    const body = (await health.body.json()) as { ok: boolean; probe: string; checks: string[] };
    assert.deepEqual([body.ok, body.probe, body.checks], [true, 'p-eu', ['auth']]);
    assert.ok(await waitFor(async () => ((await collector.sample('mailprobe_collector_results_total')) ?? 0) >= 6, 10_000));
    const metrics = await (await request(`${url}/metrics`)).body.text();
    assert.match(metrics, /mailprobe_probe_pushes_total\{region="eu",probe="p-eu",collector="[^"]+",result="accepted"\} \d+/);
    assert.equal((await request(`${url}/nope`)).statusCode, 404);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    assert.equal(
      await collector.sample('mailprobe_checks_total', { probe: 'p-eu', region: 'eu', type: 'auth', result: 'success' }),
      await collector.sample('mailprobe_collector_results_total'),
    );
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await collector.close();
    cleanup();
  }
});

test('mailprobe probe: a spool in use or a busy health port is a clear error, exit 1', async () => {
  const { dir, cleanup } = tempDir();
  const { createServer } = await import('node:net');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = (busy.address() as import('node:net').AddressInfo).port;
  try {
    const plan = writePlan(dir, { spool_dir: join(dir, 'spool') });
    const args = ['--config', plan, '--id', 'p-eu', '--region', 'eu', '--checks', 'auth'];
    const health = await cli([...args, '--health-listen', `127.0.0.1:${port}`]);
    assert.equal(health.status, 1);
    assert.match(health.stderr, new RegExp(`health endpoint cannot listen on 127.0.0.1:${port}.*EADDRINUSE`));
    assert.equal(existsSync(join(dir, 'spool', 'lock')), false, 'the failed start let go of the spool');
    // A holder that is alive (this process's parent) locks it.
    writeFileSync(join(dir, 'spool', 'lock'), `${process.ppid}\n`);
    const locked = await cli(args);
    assert.equal(locked.status, 1);
    assert.match(locked.stderr, /another probe process uses this spool directory: .* is used by pid \d+/);
  } finally {
    busy.close();
    cleanup();
  }
});

test('mailprobe probe: a round trip without its secret and SMTP AUTH without its password refuse to start (exit 2), naming each variable', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const plan = writePlanFile(dir, {
      probes: {
        roundtrip: { to: 'mailprobe-rt@company.test', secret_env: 'MAILPROBE_TEST_RT_SECRET' },
        smtp: { auth: { user: 'probe', pass_env: 'MAILPROBE_TEST_SMTP_PASS' } },
        push: { collectors: ['http://127.0.0.1:9'] },
      },
    });
    // A probe that started anyway would run until killed: 60 s is far beyond a refusal on a busy machine.
    const r = runCli(
      ['probe', '--config', plan, '--id', 'p-eu', '--region', 'eu'],
      { MAILPROBE_TOKEN: 'x', MAILPROBE_TEST_RT_SECRET: undefined, MAILPROBE_TEST_SMTP_PASS: undefined },
      { timeoutMs: 60_000 },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^mailprobe probe: environment variable MAILPROBE_TEST_RT_SECRET \(probes\.roundtrip\.secret_env\) is not set/m);
    assert.match(r.stderr, /^mailprobe probe: environment variable MAILPROBE_TEST_SMTP_PASS \(probes\.smtp\.auth\.pass_env\) is not set/m);
  } finally {
    cleanup();
  }
});
