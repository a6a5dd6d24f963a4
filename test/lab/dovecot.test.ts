/**
 * The lab's Dovecot dies with the process that started it: a Node process starts a real Dovecot
 * and is SIGKILLed (no exit handler runs); Dovecot's master and its listeners must be gone soon
 * after (stop() is what every other Dovecot test ends with).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dovecotUnavailable } from '../../lab/dovecot.js';
import { tempDir, waitFor } from '../probe/support.js';

const root = new URL('../../', import.meta.url).pathname;
const tmp = tempDir('mailprobe-dovecot-test-');
after(() => tmp.cleanup());

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

test('a SIGKILLed parent takes its Dovecot with it: master gone, IMAP no longer listening', async () => {
  const why = dovecotUnavailable();
  if (why) throw new Error(why);
  const script = join(tmp.dir, 'parent.mts');
  writeFileSync(
    script,
    `import { startDovecot } from ${JSON.stringify(join(root, 'lab/dovecot.ts'))};
const d = await startDovecot({ users: [{ user: 'seed', pass: 'pw' }] });
process.stdout.write(JSON.stringify({ dir: d.dir, imapPort: d.imapPort }) + '\\n');
setInterval(() => {}, 60_000);
`,
  );
  const parent = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    parent.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    parent.once('exit', (code) => reject(new Error(`the parent exited ${code} before Dovecot started`)));
  });
  const { dir, imapPort } = JSON.parse(line) as { dir: string; imapPort: number };
  const master = Number(readFileSync(join(dir, 'run', 'master.pid'), 'utf8').trim());
  try {
    assert.ok(alive(master), 'Dovecot runs');
    assert.equal(await accepts(imapPort), true);
    parent.kill('SIGKILL');
    assert.ok(await waitFor(() => !alive(master), 10_000, 50), `Dovecot's master ${master} still runs 10 s after its parent was killed`);
    assert.ok(await waitFor(async () => !(await accepts(imapPort)), 5_000, 50), 'IMAP still listening');
  } finally {
    parent.kill('SIGKILL');
    if (alive(master)) process.kill(master, 'SIGKILL');
  }
});
