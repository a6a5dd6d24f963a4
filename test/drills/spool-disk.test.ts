/**
 * Drill (issue 15, defect 1): the probe on a full disk and under a read-only parent, on real
 * small file systems (tmpfs mounts this test makes and removes; it needs root and fails, naming
 * the reason, when it cannot mount).
 *   - Full disk: a spool with batches left over, then the file system filled to the last byte.
 *     The probe starts, pushes what was spooled and what it measures, says the disk is full,
 *     leaves no spool.log.tmp behind; once there is room it writes everything live again.
 *   - Read-only parent: the error names the read-only file system, not ENOENT.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createProbe } from '../../probe/runtime.js';
import { Spool } from '../../probe/spool.js';
import type { AuthResult } from '../../protocol/results.js';
import { startTestCollector } from '../support/collector.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { countingCheck } from '../probe/fixtures/test-checks.js';
import { captureLogger, waitFor } from '../probe/support.js';

const mounts: string[] = [];
let root = '';

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (this drill needs root to mount a tmpfs): ${(r.stderr || r.error?.message || '').trim()}`);
}

/** A fresh tmpfs of `size` mounted in the drill's directory. */
function tmpfs(name: string, size: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, `mailprobe-drill-${name}`, dir]);
  mounts.push(dir);
  return dir;
}

/** Writes a file until the file system says ENOSPC; returns its path. */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  try {
    for (;;) writeSync(fd, chunk.subarray(0, 1));
  } catch {
    // The last bytes of the last page.
  } finally {
    closeSync(fd);
  }
  return file;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'mailprobe-drill-disk-'));
});
after(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  rmSync(root, { recursive: true, force: true });
});

test('full disk: the probe starts, pushes the spooled and the new results, says the disk is full, and recovers when there is room', async () => {
  const fs = tmpfs('full', '512k');
  const spoolDir = join(fs, 'spool');
  const collector = await startTestCollector(testPlan({ collector: { max_series_per_probe: 100_000 } }));
  const plan = testPlan({
    probes: {
      interval: '100ms',
      window_interval: '100ms',
      timeout: '100ms',
      push: { collectors: [collector.url], batch_max_results: 5, batch_max_age: '150ms', retry_min: '50ms', retry_max: '300ms', request_timeout: '1s' },
    },
  });
  // Left over from an earlier run: 3 batches of 4 the collector never got.
  {
    const { log } = captureLogger();
    const spool = Spool.open({ dir: spoolDir, maxBytes: 1 << 20, collectors: [collector.url], log });
    for (let b = 0; b < 3; b++) {
      spool.appendResults(
        Array.from(
          { length: 4 },
          (_, i): AuthResult => ({
            type: 'auth',
            method: 'dkim',
            subject: `old-${b}-${i}`,
            pass: true,
            ok: true,
            startedAt: Date.now(),
            durationSeconds: 0.001,
          }),
        ),
      );
      spool.seal(`old-batch-${b}`, Date.now());
    }
    spool.close();
  }
  const filler = fill(fs);
  const { log, lines } = captureLogger();
  const produced: AuthResult[] = [];
  const probe = createProbe({
    plan,
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 2, uniqueSubjects: true, produced: (rs) => produced.push(...rs) }) },
    spoolDir,
    logger: log,
  });
  try {
    await probe.start();
    const selectors = async () => [...(await collector.scrape()).matchAll(/^mailprobe_dkim_key_present\{selector="([^"]+)"\} /gm)].map((m) => m[1] ?? '');
    assert.ok(
      await waitFor(
        async () => {
          const s = await selectors();
          return s.filter((x) => x.startsWith('old-')).length === 12 && s.filter((x) => !x.startsWith('old-')).length >= 10;
        },
        15_000,
        100,
      ),
      `spooled and new results arrive: ${(await selectors()).length} selectors`,
    );
    const full = lines.find((l) => l.code === 'spool_disk_full');
    assert.ok(full, 'a spool_disk_full line');
    assert.equal(full.level, 50);
    assert.match(full.msg, /disk is full.*no space left on device \(ENOSPC\)/);
    assert.equal(lines.filter((l) => l.code === 'spool_disk_full').length, 1, 'said once, not per write');
    assert.equal(existsSync(join(spoolDir, 'spool.log.tmp')), false, 'no spool.log.tmp left behind');
    assert.equal((await collector.sample('mailprobe_collector_results_total')) ?? 0, (await selectors()).length, 'each result applied once');

    // Room again: the spool writes everything live back to disk.
    rmSync(filler);
    assert.ok(await waitFor(() => lines.some((l) => l.code === 'spool_disk_ok'), 10_000, 100), 'a spool_disk_ok line once there is room');
    await probe.stop({ flushMs: 2000 });
    assert.ok(produced.length >= 10);
  } finally {
    await probe.stop({ flushMs: 0 });
    await collector.close();
  }
});

test('read-only parent directory: the error names the read-only file system, not ENOENT', async () => {
  const fs = tmpfs('ro', '64k');
  mkdirSync(join(fs, 'parent'));
  run('mount', ['-o', 'remount,ro', fs]);
  const dir = join(fs, 'parent', 'spool');
  const { log } = captureLogger();
  assert.throws(
    () => Spool.open({ dir, maxBytes: 1 << 20, collectors: [], log }),
    (err: Error) => {
      assert.match(err.message, /the spool directory .*parent\/spool cannot be created: read-only file system \(EROFS\)/);
      assert.doesNotMatch(err.message, /ENOENT/);
      return true;
    },
  );
  const probe = createProbe({
    plan: testPlan(),
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    registry: { auth: countingCheck({ targets: 1 }) },
    spoolDir: dir,
    logger: log,
  });
  await assert.rejects(probe.start(), /read-only file system \(EROFS\)/);
  assert.equal(readFileSync('/proc/mounts', 'utf8').includes(`${fs} tmpfs ro`), true, 'the drill really ran on a read-only mount');
});
