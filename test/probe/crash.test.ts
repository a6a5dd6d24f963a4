import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { Spool } from '../../probe/spool.js';
import { startTestCollector } from '../support/collector.js';
import { tokenFor } from '../support/plan.js';
import { sleep, startProxy, tempDir, waitFor } from './support.js';

const ROOT = resolve(import.meta.dirname, '../..');

function startChild(planFile: string, produced: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; stderr: () => string } {
  let err = '';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'cli/main.ts', 'probe', '--config', planFile, '--id', 'p-eu', '--region', 'eu', '--check-module', 'test/probe/fixtures/test-checks.ts', '--checks', 'auth'],
    {
      cwd: ROOT,
      env: { ...process.env, MAILPROBE_TOKEN: tokenFor('p-eu'), MAILPROBE_TEST_PRODUCED: produced, MAILPROBE_TEST_TARGETS: '4', MAILPROBE_TEST_PER_RUN: '2', MAILPROBE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, exited, stderr: () => err };
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

test('probe process SIGKILLed in the middle of pushes, three times, then SIGTERM: 0 results lost, none applied twice', async () => {
  const collector = await startTestCollector();
  // Every request takes 30 ms on its way, so a push is in flight most of the time.
  const proxy = await startProxy(collector.url, { delayMs: 30 });
  const { dir, cleanup } = tempDir();
  const planFile = join(dir, 'plan.yaml');
  const produced = join(dir, 'produced.txt');
  const spoolDir = join(dir, 'spool');
  const now = Date.now();
  writeFileSync(
    planFile,
    JSON.stringify({
      cutover: {
        domain: 'company.test',
        mail_host: 'mail.company.test',
        servers: [
          { ip: '127.0.0.2', side: 'old' },
          { ip: '127.0.0.3', side: 'new' },
        ],
        window: { start: new Date(now - 3_600_000).toISOString(), end: new Date(now + 3_600_000).toISOString() },
      },
      probes: {
        interval: '100ms',
        window_interval: '100ms',
        timeout: '100ms',
        push: { collectors: [proxy.url], batch_max_results: 5, batch_max_age: '100ms', retry_min: '50ms', retry_max: '200ms', request_timeout: '2s', spool_dir: spoolDir },
      },
    }),
  );
  const accepted = async () => (await collector.sample('mailprobe_collector_batches_total', { result: 'accepted' })) ?? 0;
  const children: ChildProcess[] = [];
  try {
    let killedMidPush = 0;
    for (let round = 1; round <= 3; round++) {
      const before = await accepted();
      const c = startChild(planFile, produced);
      children.push(c.child);
      assert.ok(await waitFor(async () => (await accepted()) >= before + 3, 15_000), `round ${round}: pushes arrive; stderr: ${c.stderr()}`);
      // Kill while a request is on its way or its answer is.
      if (await waitFor(() => proxy.pending() > 0, 2000, 2)) killedMidPush++;
      c.child.kill('SIGKILL');
      const { signal } = await c.exited;
      assert.equal(signal, 'SIGKILL');
    }
    assert.ok(killedMidPush >= 2, `${killedMidPush} of 3 kills landed during a push`);

    const last = startChild(planFile, produced);
    children.push(last.child);
    const before = await accepted();
    assert.ok(await waitFor(async () => (await accepted()) >= before + 3, 15_000), `stderr: ${last.stderr()}`);
    await sleep(300);
    last.child.kill('SIGTERM');
    const { code } = await last.exited;
    assert.equal(code, 0, `exit code after SIGTERM; stderr: ${last.stderr()}`);

    const made = lines(produced);
    assert.ok(made >= 50, `${made} results produced`);
    const timeouts = await collector.sample('mailprobe_checks_total', { probe: 'p-eu', type: 'auth', result: 'timeout' });
    const dups = await collector.sample('mailprobe_collector_batches_total', { result: 'duplicate' });
    assert.equal(await collector.sample('mailprobe_collector_results_total'), made, `results applied = results produced (timeouts ${timeouts}, duplicates ${dups})`);
    assert.equal(await collector.sample('mailprobe_checks_total', { probe: 'p-eu', type: 'auth', result: 'success' }), made);
    const spool = Spool.open({ dir: spoolDir, maxBytes: 1 << 20, collectors: [proxy.url], log: pino({ level: 'silent' }) });
    assert.equal(spool.batches().length, 0, 'nothing left in the spool after SIGTERM');
    assert.equal(spool.openCount, 0);
    spool.close();
  } finally {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await proxy.close();
    await collector.close();
    cleanup();
  }
});
