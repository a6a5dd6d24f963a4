/**
 * The probe's logger (probe/log.ts) writes the lines pino wrote for the probe, byte for byte: the
 * same calls go to both (every level under several level settings, child bindings on children,
 * errors with stack, own properties and a cause, an Error as the first argument, strings needing
 * escapes, long strings, non-finite numbers, undefined and function values, circular objects and
 * BigInt), with the clock held still. Its `bindings()` and its error for an unknown level are
 * pino's; MAILPROBE_LOG_LEVEL sets its level; and a probe process writes its lines to stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { pino } from 'pino';
import { createProbeLog, type Log } from '../../probe/log.js';

const root = new URL('../../', import.meta.url).pathname;

// Made once: both loggers see the same stacks.
const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', port: 9 });
const withCause = new TypeError('outer', { cause: new Error('inner') });
const first = new RangeError('first argument');
const alone = new Error('alone');
const bound = new Error('bound error');

/** The same calls on a logger: the probe's calls and the shapes pino has special cases for. */
function calls(log: Log): void {
  log.info('no fields at all');
  log.warn({ code: 'spool_full', dropped: 3, maxBytes: 1_000_000 }, 'the spool is full');
  log.debug({ batch: 'b1', seq: 7, results: 12 }, 'batch sealed');
  log.trace({ t: 1 }, 'trace');
  log.fatal({ f: true }, 'fatal');
  log.error({ code: 'spool_write_failed', err, batch: 'b2' }, 'could not write the spool');
  log.error({ err: withCause }); // the message from err
  log.error(first, 'an Error first');
  log.error(alone);
  log.warn({ err: 'a string, not an Error', reason: 'x' });
  log.info({ quote: 'say "hi" \\ there', ctl: 'tab\there\nnewline', uni: 'ünïcödé ✓ \u2028', long: 'x"'.repeat(80) }, 'strings "quoted"\n');
  log.info({ nan: Number.NaN, inf: Number.POSITIVE_INFINITY, neg: -0.5, big: 2 ** 60, undef: undefined, fn: () => 1, nil: null }, 'numbers');
  log.info({ nested: { a: [1, 'two', { three: 3 }], b: { c: null } }, list: ['x', 'y'], date: new Date(0) }, 'nested');
  const circular: Record<string, unknown> = { name: 'loop' };
  circular.self = circular;
  log.info({ circular, big: { n: 10n } } as object, 'circular and BigInt');
  log.info({ 'key "quoted"': 1, msg: 'a msg field' });
  const child = log.child({ check: 'dns', target: 'auth:none company.test MX' });
  child.info({ ok: false, errorClass: 'timeout' }, 'dns failing');
  const grandchild = child.child({ probe: 'p-eu', region: 'eu', undef: undefined, n: 1.5, nested: { a: 'b"c' } });
  grandchild.warn({ check: 'again' }, 'a key bound and logged');
  grandchild.debug('debug from a grandchild');
  log.child({ err: bound }).info('an error bound');
}

/** The lines pino and the probe's logger write for `calls`, at `level`. */
function both(level: string): { pino: string[]; own: string[] } {
  const now = Date.now;
  Date.now = () => 1_796_000_000_123; // both read the clock per line
  try {
    const p: string[] = [];
    const o: string[] = [];
    calls(pino({ name: 'probe', level }, { write: (s: string) => p.push(s) }));
    calls(createProbeLog('probe', level, (s) => o.push(s)));
    return { pino: p, own: o };
  } finally {
    Date.now = now;
  }
}

test('the probe logger writes the lines pino wrote, at every level setting', () => {
  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) {
    const { pino: p, own } = both(level);
    assert.deepEqual(own, p, `level ${level}`);
  }
  // Not vacuous: at trace every call wrote a line, and the lines are what pino writes.
  const { own } = both('trace');
  assert.equal(own.length, 19);
  assert.equal(
    own[0],
    `{"level":30,"time":1796000000123,"pid":${process.pid},"hostname":${JSON.stringify(process.getBuiltinModule('node:os').hostname())},"name":"probe","msg":"no fields at all"}\n`,
  );
  const withErr = JSON.parse(own[5] ?? '{}') as { err: { type: string; message: string; stack: string; code: string; port: number } };
  assert.equal(withErr.err.type, 'Error');
  assert.equal(withErr.err.code, 'ECONNREFUSED');
  assert.match(withErr.err.stack, /^Error: connect ECONNREFUSED 127\.0\.0\.1:9\n {4}at /);
  assert.equal(both('info').own.length, 16, 'info: no trace and no debug lines');
  assert.equal(both('silent').own.length, 0);
});

test("bindings() and an unknown level are pino's", () => {
  const own = createProbeLog('probe', 'info', () => {}).child({ probe: 'p-eu', n: 2 });
  const theirs = pino({ name: 'probe', level: 'info' }, { write: () => {} }).child({ probe: 'p-eu', n: 2 });
  assert.deepEqual(own.bindings(), theirs.bindings());
  assert.deepEqual(own.bindings(), { name: 'probe', probe: 'p-eu', n: 2 });
  assert.throws(() => pino({ level: 'loud' }), { message: 'default level:loud must be included in custom levels' });
  assert.throws(() => createProbeLog('probe', 'loud'), { message: 'default level:loud must be included in custom levels' });
});

test('MAILPROBE_LOG_LEVEL sets the level; the lines go to stderr', () => {
  const script = "import { createProbeLog } from './probe/log.ts'; const l = createProbeLog('probe'); l.debug({ a: 1 }, 'debug'); l.info('info');";
  const run = (level: string | undefined) => {
    const env = { ...process.env };
    if (level === undefined) delete env.MAILPROBE_LOG_LEVEL;
    else env.MAILPROBE_LOG_LEVEL = level;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    return r.stderr.split('\n').flatMap((l) => (l ? [(JSON.parse(l) as { msg: string }).msg] : []));
  };
  assert.deepEqual(run(undefined), ['info']);
  assert.deepEqual(run('debug'), ['debug', 'info']);
  assert.deepEqual(run('warn'), []);
});
