/**
 * `mailprobe collector` as a process: listens, answers health checks, serves both exposition
 * formats cleanly (promtool), drains an in-flight push on SIGTERM and exits 0; runs with its
 * memory settings (config/node-runtime.ts).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { request } from 'undici';
import { hashToken } from '../../collector/plugins/auth.js';
import { missingTuning, PROBE_TUNING, SERVER_TUNING } from '../../config/node-runtime.js';

const SERVER_NODE_FLAGS = SERVER_TUNING.flags;
const SERVER_ENV = SERVER_TUNING.env;
import { collectorUrl, runCli } from '../support/cli.js';
import { writePlanFile } from '../../bench/lib/plan.js';
import { batchOf, mixedResults } from '../support/results.js';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mailprobe-cli-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function startCollectorProcess(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null>; log: () => string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, MAILPROBE_LISTEN: '127.0.0.1:0', MAILPROBE_LOG_LEVEL: 'info' };
  for (const k of ['NODE_OPTIONS', 'MAILPROBE_NODE_TUNING', 'MAILPROBE_NODE_FLAGS', 'MAILPROBE_NODE_TUNED', ...Object.keys(SERVER_ENV)]) delete env[k];
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), 'collector', '--config', writePlanFile(dir)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await collectorUrl(child, () => log);
  return { child, url, exited, log: () => log };
}

/** V8's heap limit in MiB of a bare `node` with these flags (it moves with the young generation's size). */
function heapLimitWith(flags: string[]): number {
  const r = spawnSync(process.execPath, [...flags, '-p', 'Math.round(require("v8").getHeapStatistics().heap_size_limit / 2 ** 20)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

test('collector process: re-executed in place with the memory settings (config/node-runtime.ts), which are in effect', async () => {
  const { child, url, log } = await startCollectorProcess();
  const pid = child.pid ?? -1;
  // The same PID (execve, no second process) now runs with the flags before the script.
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  assert.deepEqual(argv.slice(1, 1 + SERVER_NODE_FLAGS.length), [...SERVER_NODE_FLAGS]);
  assert.ok(argv.includes('collector'), argv.join(' '));
  assert.equal((await request(`${url}/healthz`)).statusCode, 200);
  const environ = new Set(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0'));
  for (const [k, v] of Object.entries(SERVER_ENV)) assert.ok(environ.has(`${k}=${v}`), `${k}=${v} in the collector's environment`);
  // The values config/node-runtime.ts measured: one arena; blocks of 32 KiB and up (V8's compiler zones) from mmap.
  assert.ok(environ.has('MALLOC_ARENA_MAX=1') && environ.has('MALLOC_MMAP_THRESHOLD_=32768'), [...environ].filter((e) => e.startsWith('MALLOC_')).join(' '));
  // The running process's own account: the flags and V8's heap limit they give (not Node's default).
  const line = log()
    .split('\n')
    .map((l) =>
      l.startsWith('{') ? (JSON.parse(l) as { msg?: string; runtime?: { nodeFlags: string[]; env: Record<string, string>; heapLimitMiB: number } }) : {},
    )
    .find((l) => l.msg === 'collector listening');
  assert.ok(line?.runtime, log());
  assert.deepEqual(line.runtime.nodeFlags.slice(0, SERVER_NODE_FLAGS.length), [...SERVER_NODE_FLAGS]);
  assert.deepEqual(line.runtime.env, SERVER_ENV);
  const tuned = heapLimitWith([...SERVER_NODE_FLAGS]);
  assert.equal(line.runtime.heapLimitMiB, tuned);
  assert.notEqual(tuned, heapLimitWith([]), 'the flags change the heap limit of a bare node');
  // Two V8 helper threads (GC and compilers) instead of Node's four: two threads fewer than a bare node's.
  assert.equal(threadsWith([]) - threadsWith([...SERVER_NODE_FLAGS]), 2);
  child.kill('SIGTERM');
});

/** Threads of a bare `node` with these flags once it runs (main, V8's helpers, Node's own). */
function threadsWith(flags: string[]): number {
  const count = 'setTimeout(() => console.log(require("node:fs").readdirSync("/proc/self/task").length), 50)';
  return Number(spawnSync(process.execPath, [...flags, '-e', count], { encoding: 'utf8' }).stdout.trim());
}

test('runtime tuning: what the operator set wins, MAILPROBE_NODE_TUNING=0 turns it off', () => {
  assert.deepEqual(missingTuning(SERVER_TUNING, [], {}), { flags: [...SERVER_NODE_FLAGS], env: { ...SERVER_ENV } });
  assert.deepEqual(missingTuning(SERVER_TUNING, ['--max_semi_space_size=32'], { MALLOC_ARENA_MAX: '4' }), {
    flags: ['--v8-pool-size=2'],
    env: { MALLOC_MMAP_THRESHOLD_: '32768' },
  });
  assert.deepEqual(
    missingTuning(SERVER_TUNING, ['--v8_pool_size=4'], {
      NODE_OPTIONS: '--max-semi-space-size=16 --trace-gc',
      MALLOC_MMAP_THRESHOLD_: '0',
      MALLOC_ARENA_MAX: '2',
    }),
    {
      flags: [],
      env: {},
    },
  );
  assert.deepEqual(missingTuning(SERVER_TUNING, [], { MAILPROBE_NODE_TUNING: '0' }), { flags: [], env: {} });
  // MAILPROBE_NODE_FLAGS replaces the flags (the probe's and the servers' alike), checked; once re-executed nothing is missing.
  assert.deepEqual(missingTuning(SERVER_TUNING, [], { MAILPROBE_NODE_FLAGS: ' --max-old-space-size=300  --no-opt ' }), {
    flags: ['--max-old-space-size=300', '--no-opt'],
    env: { ...SERVER_ENV },
  });
  assert.deepEqual(missingTuning(PROBE_TUNING, [], { MAILPROBE_NODE_FLAGS: '' }), { flags: [], env: {} });
  assert.deepEqual(missingTuning(PROBE_TUNING, [], { MAILPROBE_NODE_FLAGS: '--no-opt -e1' }), {
    error: 'MAILPROBE_NODE_FLAGS: "-e1" is not a --flag or --flag=value',
  });
  assert.deepEqual(missingTuning(SERVER_TUNING, [], { MAILPROBE_NODE_TUNED: '1' }), { flags: [], env: {} });
});

test('runtime tuning: a re-executed process does not pass its marker on, so the processes it starts tune themselves', () => {
  // The process as re-executed (marker set): applyTuning adds nothing and removes the marker from its environment.
  const script = `import { applyTuning, SERVER_TUNING } from ${JSON.stringify(join(root, 'config/node-runtime.ts'))};
applyTuning(SERVER_TUNING);
console.log(JSON.stringify(process.env.MAILPROBE_NODE_TUNED ?? null));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, MAILPROBE_NODE_TUNED: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'null');
});

test('collector process: health, both exposition formats promtool-clean, drain on SIGTERM, exit 0', async () => {
  const { child, url, exited } = await startCollectorProcess();
  assert.equal((await request(`${url}/healthz`)).statusCode, 200);
  const ready = await request(`${url}/readyz`);
  assert.equal(ready.statusCode, 200);
  await ready.body.dump();

  const body = JSON.stringify(batchOf(mixedResults()));
  const push = await request(`${url}/v1/results`, {
    method: 'POST',
    headers: { authorization: 'Bearer token-p-eu', 'content-type': 'application/json' },
    body,
  });
  assert.equal(push.statusCode, 200);
  await push.body.dump();

  for (const om of [true, false]) {
    const r = await request(`${url}/metrics`, { headers: om ? { accept: 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5' } : {} });
    const text = await r.body.text();
    assert.match(String(r.headers['content-type']), om ? /application\/openmetrics-text/ : /text\/plain; version=0\.0\.4/);
    if (om) assert.ok(text.endsWith('# EOF\n'));
    assert.match(text, /^mailprobe_smtp_checks_total\{/m, 'counters keep _total in both formats');
    if (om) {
      // OpenMetrics names the counter family without _total; promtool lints only the text
      // format, so a real Prometheus parses this one (test/collector/prometheus.test.ts).
      assert.match(text, /^# TYPE mailprobe_smtp_checks counter$/m);
      continue;
    }
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'promtool reports nothing');
  }

  // A push in flight when SIGTERM arrives still completes.
  const port = Number(new URL(url).port);
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const newBody = body.replace(/"id":"[^"]+","seq"/, '"id":"inflight-batch-1","seq"');
  const head = `POST /v1/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-p-eu\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(newBody)}\r\nConnection: close\r\n\r\n`;
  sock.write(head + newBody.slice(0, 100));
  let answer = '';
  sock.on('data', (d: Buffer) => (answer += d.toString()));
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  sock.end(newBody.slice(100));
  await new Promise((r) => sock.once('close', r));
  assert.match(answer, /^HTTP\/1\.1 200/, answer);
  assert.match(answer, /"status":"accepted"/);
  assert.equal(await exited, 0);
});

test('mailprobe config check names each problem and exits 1; the example passes', () => {
  const ok = runCli(['config', 'check', join(root, 'examples/plan.yaml')]);
  assert.equal(ok.status, 0, ok.stderr);
  const bad = runCli(['config', 'check', join(root, 'test/config/fixtures/invalid/bad-ip.yaml')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /cutover\.servers\[1\]\.ip: must be an IPv4 or IPv6 address/);
});

test('mailprobe --help, config schema, token, unknown command', () => {
  const help = runCli(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /mailprobe collector --config FILE/);
  assert.match(runCli(['collector', '--help']).stdout, /--listen ADDR/);
  const schema = JSON.parse(runCli(['config', 'schema']).stdout) as { title: string };
  assert.equal(schema.title, 'mailprobe cutover plan');
  const tok = runCli(['token']).stdout;
  const m = /token: +(\S+)\nplan: +(sha256:[0-9a-f]{64})/.exec(tok);
  assert.ok(m?.[1] && m[2], tok);
  assert.equal(m[2], hashToken(m[1]));
  const unknown = runCli(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const missing = runCli(['collector']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--config FILE is required/);
});
