/**
 * `npm start` as a new user runs it: the lab cutover plays to the end of its timeline and exits 0;
 * Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops it cleanly with no
 * process left behind. It prints the status page's URL at start and the report's path at the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

const root = new URL('../../', import.meta.url).pathname;

function run(cmd: string, args: string[]) {
  const child = spawn(cmd, args, {
    cwd: root,
    detached: true,
    env: { ...process.env, MAILPROBE_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitFor = async (re: RegExp, ms: number) => {
    const until = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > until) throw new Error(`no ${re} in ${ms} ms; output:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const groupGone = async (ms = 5000) => {
    const until = Date.now() + ms;
    // tsx's esbuild helper leaves a moment after its parent.
    while (groupAlive() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    return !groupAlive();
  };
  const groupAlive = () => {
    try {
      process.kill(-(child.pid ?? 0), 0);
      return true;
    } catch {
      return false;
    }
  };
  return { child, exited, waitFor, groupAlive, groupGone, output: () => out };
}

test('the lab timeline plays to its end: every step happens, resolvers move to the new IP, exit 0', async () => {
  const p = run(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), 'start', '--duration', '30', '--plain']);
  try {
    const { code } = await p.exited;
    const out = p.output();
    assert.equal(code, 0, out);
    for (const step of [
      'TTL lowered',
      'cutover window opens',
      'A record switched to the new IP',
      'TTL raised',
      'old server turned off',
      'cutover window closes',
      'end of the lab timeline',
    ]) {
      assert.ok(out.includes(step), `step "${step}" happened`);
    }
    // The final summary: resolvers by name, the TTL-honour figure, round trips per IP.
    const last = out.slice(out.lastIndexOf('summary of the whole run'));
    assert.ok(out.includes('summary of the whole run (00:30)'), out);
    assert.match(last, /^region +clamps TTL +honest +ignores TTL +serve-stale +TTL honoured$/m);
    for (const region of ['eu', 'us', 'ap'])
      assert.match(last, new RegExp(`^${region} .*\\bnew\\b`, 'm'), `${region}: a row, some resolver answers the new IP at the end`);
    const honour = /^all +(\d+) of (\d+) \(\d+ %\)/m.exec(last);
    assert.ok(honour, `a TTL-honour figure:\n${last}`);
    assert.ok(Number(honour[2]) >= 1 && Number(honour[1]) <= Number(honour[2]));
    // The old server is turned off before the end: round trips via it fail, and the summary says so.
    const old = /^127\.0\.0\.2 \(old, provider-a\) +(\d+)\/(\d+) .* (\d+) \/ (\d+) \/ (\d+) /m.exec(last);
    assert.ok(old, `a row for the old IP:\n${last}`);
    assert.ok(Number(old[4]) >= 1, `failed round trips via the old IP are counted: ${old[0]}`);
    assert.match(last, /^127\.0\.0\.3 \(new, provider-b\) +\d+\/\d+ +\d/m);
    assert.match(last, /^safe to switch: /m);
    assert.match(last, /^safe to turn the old server off: /m);
    assert.doesNotMatch(last, /Ctrl-C/);
    assert.doesNotMatch(out, /MaxListenersExceededWarning/);
    // Log lines name the probe once.
    const logFile = /logs: (\S+)\)/.exec(out)?.[1];
    assert.ok(logFile, 'the log file is named');
    const log = readFileSync(logFile, 'utf8');
    assert.doesNotMatch(log, /"probe":"[^"]*","probe"/);
    assert.match(out, /timeline finished; stopping every part/);
    assert.match(out, /mailprobe lab: collector metrics at (http:\/\/127\.0\.0\.1:\d+)\/metrics\nmailprobe lab: status page at \1\/\n/);
    // Prometheus is a test peer, so the lab runs one and writes the report.
    const report = /mailprobe lab: cutover report at (\S+\.html)\n/.exec(out)?.[1];
    assert.ok(report, out.slice(-2000));
    assert.match(readFileSync(report, 'utf8'), /<h1>Cutover report for mail\.company\.test<\/h1>[\s\S]*A record switched to the new IP/);
    assert.match(readFileSync(report.replace(/\.html$/, '.md'), 'utf8'), /^## Timeline$/m);
    rmSync(dirname(report), { recursive: true, force: true });
    assert.ok(await p.groupGone(), 'no process of the lab is left');
  } finally {
    if (p.groupAlive()) process.kill(-(p.child.pid ?? 0), 'SIGKILL');
  }
});

test('npm start: Ctrl-C stops the lab cleanly, leaving no process behind', async () => {
  const p = run('npm', ['start', '--', '--plain']);
  try {
    await p.waitFor(/collector metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/, 120_000);
    await p.waitFor(/TTL lowered|region +resolvers/, 30_000);
    process.kill(-(p.child.pid ?? 0), 'SIGINT');
    const { code, signal } = await p.exited;
    // npm re-raises the signal its script got, so a shell sees "interrupted"; the lab itself
    // stopped every part and returned 0 (the lines below are printed after everything stopped).
    assert.ok(code === 0 || signal === 'SIGINT', `npm exit ${code} ${signal}`);
    assert.match(p.output(), /stopping on SIGINT; stopping every part\nmailprobe lab: stopped after \d+ updates/);
    assert.ok(await p.groupGone(), 'no process of the lab is left');
  } finally {
    if (p.groupAlive()) process.kill(-(p.child.pid ?? 0), 'SIGKILL');
  }
});
