/**
 * What a probe decided, read from a real probe's log (`mailprobe probe` as a process, JSON lines
 * on stderr at debug): smtp checks against the lab MTAs, the new one greylisting for a while.
 * Every result is a debug line with type, target, ok, errorClass, code and duration; the target's
 * change to failing and back to ok are one info line each, not one per interval.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startMtas } from '../../lab/mta/index.js';
import { makeLabCerts } from '../../lab/mta/certs.js';
import { tempDir, waitFor } from '../probe/support.js';
import { tokenFor, writePlanFile } from '../../bench/lib/plan.js';

const root = new URL('../../', import.meta.url).pathname;

interface Line {
  level: number;
  msg: string;
  type?: string;
  target?: string;
  ok?: boolean;
  errorClass?: string;
  code?: string;
  duration?: number;
  message?: string;
}

test('mailprobe probe logs each result at debug and each state change of a target once at info', { timeout: 90_000 }, async () => {
  const certs = await makeLabCerts({ mailHost: 'mail.company.test' });
  const mtas = await startMtas({ mailHost: 'mail.company.test', domain: 'company.test', certs });
  const { dir, cleanup } = tempDir();
  const plan = writePlanFile(dir, {
    cutover: {
      servers: [
        { ip: mtas.old.ip, side: 'old', port: mtas.old.port },
        { ip: mtas.new.ip, side: 'new', port: mtas.new.port },
      ],
    },
    // Generous timeouts: a busy machine must not turn a greylisted session into a timeout.
    probes: {
      interval: '700ms',
      window_interval: '700ms',
      timeout: '700ms',
      smtp: { ca_file: certs.caFile, connect_timeout: '700ms', banner_timeout: '700ms' },
      push: { spool_dir: join(dir, 'spool') },
    },
  });
  const newTarget = `${mtas.new.ip}:${mtas.new.port}`;
  await mtas.setFault('new', { kind: 'temp-fail', at: 'rcpt' });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'cli/main.ts'), 'probe', '--config', plan, '--id', 'p-eu', '--region', 'eu', '--checks', 'smtp'],
    {
      cwd: root,
      env: { ...process.env, MAILPROBE_TOKEN: tokenFor('p-eu'), MAILPROBE_LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout?.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const lines = (): Line[] =>
    err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  const results = (target: string, ok?: boolean) =>
    lines().filter((l) => l.level === 20 && l.type === 'smtp' && l.target === target && (ok === undefined || l.ok === ok));
  try {
    assert.ok(await waitFor(() => results(newTarget, false).length >= 4, 60_000), `four failed results logged: ${err.slice(-2000)}`);
    await mtas.setFault('new', null);
    assert.ok(await waitFor(() => results(newTarget, true).length >= 3, 20_000), `three ok results logged: ${err.slice(-2000)}`);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err.slice(-2000));

    // Every result at debug, with its fields.
    const failed = results(newTarget, false).find((l) => l.errorClass === 'temp_fail')!;
    assert.equal(failed.msg, `smtp ${newTarget}: temp_fail (smtp_temp_fail)`);
    assert.deepEqual([failed.ok, failed.errorClass, failed.code], [false, 'temp_fail', 'smtp_temp_fail']);
    assert.ok(typeof failed.duration === 'number' && failed.duration > 0 && failed.duration < 1, `duration ${failed.duration}`);
    const good = results(`${mtas.old.ip}:${mtas.old.port}`, true)[0]!;
    assert.equal(good.msg, `smtp ${mtas.old.ip}:${mtas.old.port}: ok`);
    assert.deepEqual([good.errorClass, good.code], [undefined, undefined]);

    // One info line per state change of a target, derived here from its own debug lines (a busy
    // machine may add a timeout in between): first failure, another class, ok again.
    const changes = lines().filter((l) => l.level === 30 && l.type === 'smtp');
    const expected: [string, boolean, string | undefined][] = [];
    const last = new Map<string, Line>();
    for (const r of lines().filter((l) => l.level === 20 && l.type === 'smtp')) {
      const before = last.get(r.target!);
      if (r.ok ? before !== undefined && !before.ok : !before || before.ok || before.errorClass !== r.errorClass)
        expected.push([r.target!, r.ok!, r.errorClass]);
      last.set(r.target!, r);
    }
    assert.deepEqual(
      changes.map((l) => [l.target, l.ok, l.errorClass]),
      expected,
      JSON.stringify(changes),
    );
    const mine = changes.filter((l) => l.target === newTarget);
    assert.ok(mine.length < results(newTarget).length / 2, `${mine.length} info lines for ${results(newTarget).length} results`);
    const grey = mine.find((l) => l.errorClass === 'temp_fail')!;
    assert.match(grey.msg, new RegExp(`^smtp ${newTarget}: failing, temp_fail \\(smtp_temp_fail\\): .*451 4\\.7\\.1 Greylisted, please try again later`));
    assert.equal(grey.message?.includes('451 4.7.1 Greylisted'), true);
    assert.deepEqual([mine.at(-1)!.ok, mine.at(-1)!.errorClass], [true, undefined]);
    assert.match(mine.at(-1)!.msg, new RegExp(`^smtp ${newTarget}: ok again after \\d+ failed results? \\((temp_fail|timeout)\\)$`));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await mtas.close();
    await certs.cleanup();
    cleanup();
  }
});
