import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { Spool } from '../../probe/spool.js';
import { startTestCollector } from '../support/collector.js';
import { tokenFor, writePlanFile } from '../../bench/lib/plan.js';
import { startProxy, tempDir, waitFor } from './support.js';

const ROOT = resolve(import.meta.dirname, '../..');

function startChild(
  planFile: string,
  produced: string,
): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; stderr: () => string } {
  let err = '';
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli/main.ts',
      'probe',
      '--config',
      planFile,
      '--id',
      'p-eu',
      '--region',
      'eu',
      '--check-module',
      'test/probe/fixtures/test-checks.ts',
      '--checks',
      'auth',
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        MAILPROBE_TOKEN: tokenFor('p-eu'),
        MAILPROBE_TEST_PRODUCED: produced,
        MAILPROBE_TEST_TARGETS: String(TARGETS),
        MAILPROBE_TEST_PER_RUN: String(PER_RUN),
        MAILPROBE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, exited, stderr: () => err };
}

const KILLS = 2;
const TARGETS = 4;
const PER_RUN = 4;

test('probe process SIGKILLed in the middle of pushes, twice, then SIGTERM: 0 results lost, none applied twice', async () => {
  const collector = await startTestCollector();
  // Every request takes 30 ms on its way, so a push is in flight most of the time.
  const proxy = await startProxy(collector.url, { delayMs: 30 });
  const { dir, cleanup } = tempDir();
  const produced = join(dir, 'produced.txt');
  const spoolDir = join(dir, 'spool');
  const planFile = writePlanFile(dir, {
    probes: {
      interval: '500ms',
      window_interval: '500ms',
      timeout: '500ms',
      push: {
        collectors: [proxy.url],
        batch_max_results: 5,
        batch_max_age: '100ms',
        retry_min: '50ms',
        retry_max: '200ms',
        request_timeout: '2s',
        spool_dir: spoolDir,
      },
    },
  });
  const accepted = async () => (await collector.sample('mailprobe_collector_batches_total', { result: 'accepted' })) ?? 0;
  const children: ChildProcess[] = [];
  try {
    let killedMidPush = 0;
    for (let round = 1; round <= KILLS; round++) {
      const before = await accepted();
      const c = startChild(planFile, produced);
      children.push(c.child);
      // Five batches of five results a round: the floor on results produced below holds however fast the machine is.
      assert.ok(await waitFor(async () => (await accepted()) >= before + 5, 45_000), `round ${round}: pushes arrive; stderr: ${c.stderr()}`);
      // Kill while a request is on its way or its answer is.
      if (await waitFor(() => proxy.pending() > 0, 2000, 2)) killedMidPush++;
      c.child.kill('SIGKILL');
      const { signal } = await c.exited;
      assert.equal(signal, 'SIGKILL');
      appendFileSync(produced, 'KILL\n');
    }
    assert.equal(killedMidPush, KILLS, 'every kill landed while a push was in flight');

    const last = startChild(planFile, produced);
    children.push(last.child);
    const before = await accepted();
    assert.ok(await waitFor(async () => (await accepted()) >= before + 5, 45_000), `stderr: ${last.stderr()}`);
    await sleep(300);
    last.child.kill('SIGTERM');
    const { code } = await last.exited;
    assert.equal(code, 0, `exit code after SIGTERM; stderr: ${last.stderr()}`);

    // Every result the probe took is at the collector once. Results a check had measured but
    // not yet handed to the runtime when the process was killed are gone with the process:
    // those can only be the last round before a kill.
    const timeouts = await collector.sample('mailprobe_checks_total', { probe: 'p-eu', type: 'auth', result: 'timeout' });
    assert.equal(timeouts, undefined, 'no check timed out (else its results would be replaced)');
    const log = readFileSync(produced, 'utf8').split('\n').filter(Boolean);
    const made = log.filter((l) => l !== 'KILL');
    assert.ok(made.length >= 50, `${made.length} results produced`);
    const text = await collector.scrape();
    const seen = new Set([...text.matchAll(/^mailprobe_dkim_key_present\{selector="([^"]+)"\} /gm)].map((m) => m[1]));
    const applied = await collector.sample('mailprobe_collector_results_total');
    assert.equal(applied, seen.size, 'no result applied twice');
    assert.equal(await collector.sample('mailprobe_checks_total', { probe: 'p-eu', type: 'auth', result: 'success' }), seen.size);
    for (const sub of seen) assert.ok(made.includes(sub ?? ''), `${sub} at the collector was produced`);
    const inFlightAtKill = new Set<string>();
    log.forEach((l, i) => {
      if (l === 'KILL') for (const x of log.slice(Math.max(0, i - TARGETS * PER_RUN), i)) inFlightAtKill.add(x);
    });
    const missing = made.filter((x) => !seen.has(x));
    const lost = missing.filter((x) => !inFlightAtKill.has(x));
    assert.deepEqual(lost, [], `lost results (not in the last round before a kill); ${missing.length} missing in all`);
    process.stderr.write(
      `# crash drill: ${made.length} produced, ${seen.size} applied once, ${missing.length} measured by a run the kill interrupted, duplicates answered ${await collector.sample('mailprobe_collector_batches_total', { result: 'duplicate' })}\n`,
    );
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
