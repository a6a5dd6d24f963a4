/**
 * The mail server log follower (`mailprobe mta-log`): a real Postfix (bench/lib/postfix.ts, needs
 * root) takes sessions from two client networks while the follower reads its log file and pushes
 * to a real collector; the same log, as `journalctl -o cat` prints it, goes through a real pipe
 * into the `mailprobe mta-log --stdin` process. Exim lines come from a fixture written after the
 * Exim specification's "Log files" chapter. Rotation and truncation happen to real files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createTransport } from 'nodemailer';
import { serverProblem } from '../../collector/servers.js';
import { StatusModel } from '../../collector/status/model.js';
import { EximParser } from '../../probe/mtalog/exim.js';
import { followFile } from '../../probe/mtalog/follow.js';
import { blockList, createMtaLog } from '../../probe/mtalog/index.js';
import { clientNet, Tally } from '../../probe/mtalog/tally.js';
import type { CheckResult } from '../../protocol/results.js';
import { postfixUnavailable, startPostfix, type TestPostfix } from '../../bench/lib/postfix.js';
import { testPlan, tokenFor, writePlanFile } from '../../bench/lib/plan.js';
import { runCli } from '../support/cli.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { tempDir, waitFor } from './support.js';

const OLD = '127.0.0.9';
const servers = [
  { ip: OLD, side: 'old', name: 'old-postfix' },
  { ip: '127.0.0.3', side: 'new' },
];
const root = new URL('../../', import.meta.url).pathname;

describe('Postfix: the follower reads a real Postfix log and the collector counts its traffic', () => {
  const unavailable = postfixUnavailable();
  let pf: TestPostfix;
  let col: TestCollector;
  const tmp = tempDir('mailprobe-mtalog-');
  beforeEach(() => {
    if (unavailable) throw new Error(unavailable);
  });
  before(async () => {
    if (unavailable) return;
    pf = await startPostfix({ ip: OLD, hostname: 'old.company.test', relayDomains: ['company.test'], transport: { 'company.test': 'discard:' } });
    col = await startTestCollector(testPlan({ cutover: { servers } }));
  });
  after(async () => {
    await pf?.stop();
    await col?.close();
    tmp.cleanup();
  });

  /** One SMTP session from `from`: a message, or only up to RCPT and RSET (Postfix made a queue file, nothing queued). */
  const session = async (from: string, deliver: boolean) => {
    if (!deliver) return rcptOnly(pf, from);
    const t = createTransport({ host: pf.ip, port: pf.port, secure: false, ignoreTLS: true, localAddress: from });
    try {
      await t.sendMail({ from: 'a@partner.test', to: 'b@company.test', subject: 'hi', text: 'x' });
    } finally {
      t.close();
    }
  };

  test('sessions and queued messages per client network, top N + other, the last session time', async () => {
    const plan = testPlan({ cutover: { servers }, probes: { push: { collectors: [col.url], batch_max_age: '100ms' } } });
    const f = createMtaLog({
      plan,
      id: 'p-eu',
      region: 'eu',
      token: tokenFor('p-eu'),
      format: 'postfix',
      input: { file: join(pf.dir, 'maillog'), pollMs: 50 },
      ips: [{ ip: OLD }],
      topNetworks: 1,
      spoolDir: join(tmp.dir, 'spool-file'),
    });
    await f.start();
    // Let the follower take the file's end before the traffic starts (it reads only what comes after).
    await waitFor(() => false, 200);
    const t0 = Date.now();
    await session('127.0.1.5', true);
    await session('127.0.1.6', true);
    await session('127.0.1.5', true);
    await session('127.0.2.9', false);
    const t1 = Date.now();
    // qmgr logs the queued messages a moment after the sessions.
    assert.ok(await waitFor(async () => (await pf.log()).split('(queue active)').length - 1 >= 3, 10_000), 'postfix queued the three messages');
    await waitFor(() => false, 300);
    await f.stop();
    const l = { server: 'p-eu', ip: OLD, side: 'old' };
    // 127.0.1.0/24 is the top network; 127.0.2.9 (a session that queued nothing) is folded into other.
    assert.equal(await col.sample('mailprobe_mta_inbound_sessions_total', { ...l, client_net: '127.0.1.0/24' }), 3);
    assert.equal(await col.sample('mailprobe_mta_inbound_sessions_total', { ...l, client_net: 'other' }), 1);
    assert.equal(await col.sample('mailprobe_mta_inbound_messages_total', { ...l, client_net: '127.0.1.0/24' }), 3);
    assert.equal(await col.sample('mailprobe_mta_inbound_messages_total', { ...l, client_net: 'other' }), undefined, 'the RCPT-only session queued nothing');
    const last = (await col.sample('mailprobe_mta_last_inbound_session_timestamp_seconds', l))! * 1000;
    // Postfix's syslog stamps have whole seconds.
    assert.ok(last >= Math.floor(t0 / 1000) * 1000 && last <= t1, `last session ${new Date(last).toISOString()} within the traffic`);
    assert.equal(await col.sample('mailprobe_mta_log_lines_total', { server: 'p-eu', result: 'unknown' }), 0);
    assert.ok((await col.sample('mailprobe_mta_log_lines_total', { server: 'p-eu', result: 'known' }))! >= 16, 'every line of the sessions was read');
  });

  test('stdin: the same log as journalctl -o cat prints it, through a real pipe into mailprobe mta-log', async () => {
    const planFile = writePlanFile(tmp.dir, { cutover: { servers }, probes: { push: { collectors: [col.url], batch_max_age: '100ms' } } });
    // journalctl -o cat prints the message alone: no stamp, host or program.
    const text = (await pf.log())
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(/^\S+ +\d+ [\d:]+ \S+ [^:]+: /, ''));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'cli/main.ts'),
        'mta-log',
        '--config',
        planFile,
        '--id',
        'p-us',
        '--region',
        'us',
        '--stdin',
        '--ip',
        OLD,
        '--spool-dir',
        join(tmp.dir, 'spool-stdin'),
      ],
      { cwd: root, env: { ...process.env, MAILPROBE_TOKEN: tokenFor('p-us'), MAILPROBE_LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exit = new Promise<number | null>((r) => child.once('close', r));
    for (const line of [...text, 'a line of no grammar']) child.stdin.write(`${line}\n`);
    child.stdin.end();
    assert.equal(await exit, 0, stderr);
    const l = { server: 'p-us', ip: OLD, side: 'old' };
    // The whole log: the start-up check's connect from 127.0.0.1 too.
    assert.equal(await col.sample('mailprobe_mta_inbound_sessions_total', { ...l, client_net: '127.0.1.0/24' }), 3);
    assert.equal(await col.sample('mailprobe_mta_inbound_sessions_total', { ...l, client_net: '127.0.2.0/24' }), 1);
    assert.equal(await col.sample('mailprobe_mta_inbound_messages_total', { ...l, client_net: '127.0.1.0/24' }), 3);
    assert.equal(await col.sample('mailprobe_mta_log_lines_total', { server: 'p-us', result: 'unknown' }), 1, 'the line of no grammar is counted');
  });
});

/** EHLO, MAIL, RCPT, RSET, QUIT: the session of a probe in rcpt mode. */
async function rcptOnly(pf: TestPostfix, from: string): Promise<void> {
  const sock = connect({ host: pf.ip, port: pf.port, localAddress: from });
  sock.setEncoding('utf8');
  let buf = '';
  const reply = () =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = /(?:^|\n)(\d{3}) [^\n]*\r?\n$/.exec(buf);
        if (!m) return;
        sock.off('data', on);
        const r = buf;
        buf = '';
        resolve(r);
      };
      const on = (d: string) => {
        buf += d;
        check();
      };
      sock.on('data', on);
      sock.once('error', reject);
      check();
    });
  await reply();
  for (const cmd of ['EHLO client.test', 'MAIL FROM:<a@partner.test>', 'RCPT TO:<b@company.test>', 'RSET', 'QUIT']) {
    sock.write(`${cmd}\r\n`);
    const r = await reply();
    assert.match(r, /(?:^|\n)2\d\d /, `${cmd}: ${r}`);
  }
  sock.destroy();
}

describe('Exim: the fixture after the specification', () => {
  test('sessions (smtp_connection), arrivals with H=, the server address from I=; unknown lines counted', () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    const started = Date.parse('2026-11-30T00:00:00Z');
    const tally = new Tally({ ips: [{ ip: '203.0.113.10', side: 'old' }], topN: 10, v4Prefix: 24, v6Prefix: 48, startedAt: started });
    const p = new EximParser();
    const lines = readFileSync(new URL('./fixtures/exim-mainlog', import.meta.url), 'utf8')
      .split('\n')
      .filter(Boolean);
    for (const line of lines) tally.add(p.parse(line), now);
    const r = tally.drain(now);
    assert.deepEqual(r, {
      lines: 17,
      unknownLines: 1,
      ips: [
        {
          ip: '203.0.113.10',
          side: 'old',
          sessions: [
            { net: '192.0.2.0/24', count: 1 },
            { net: '198.51.100.0/24', count: 3 },
            { net: '2001:db8:7::/48', count: 1 },
          ],
          messages: [
            { net: '198.51.100.0/24', count: 3 },
            { net: '2001:db8:7::/48', count: 1 },
          ],
          // The syslog-wrapped line is the latest session; stamps without an offset are local time.
          lastSessionAt: new Date(2026, 10, 30, 10, 0, 12).getTime(),
          // The default quiet time is 24 h: 14 h since that session is not quiet.
          quiet: false,
        },
      ],
    });
    assert.equal(tally.skipped, 1, 'the session on 10.0.0.5:587 is not on a reported IP');
    // +0100 is read as an offset: 10:00:04.125 +0100 is 09:00:04.125Z.
    const ev = p.parse('2026-11-30 10:00:04.125 +0100 [2210] SMTP connection from [198.51.100.99]:51000 (TCP/IP connection count = 2)');
    assert.equal(ev.kind === 'session' ? ev.at : 0, Date.parse('2026-11-30T09:00:04.125Z'));
  });

  test('top N: the rest is "other", in sessions and messages alike; networks of v4 and v6', () => {
    const tally = new Tally({ ips: [{ ip: '203.0.113.10', side: 'old' }], topN: 1, v4Prefix: 16, v6Prefix: 32, startedAt: 0 });
    const p = new EximParser();
    for (const line of readFileSync(new URL('./fixtures/exim-mainlog', import.meta.url), 'utf8').split('\n')) tally.add(p.parse(line), Date.now());
    const [x] = tally.drain(Date.now()).ips;
    assert.deepEqual(x?.sessions, [
      { net: '198.51.0.0/16', count: 3 },
      { net: 'other', count: 2 },
    ]);
    assert.deepEqual(x?.messages, [
      { net: '198.51.0.0/16', count: 3 },
      { net: 'other', count: 1 },
    ]);
    // The probes' own addresses are not counted (--ignore-client).
    const quiet = new Tally({
      ips: [{ ip: '203.0.113.10', side: 'old' }],
      topN: 10,
      v4Prefix: 24,
      v6Prefix: 48,
      startedAt: 0,
      ignore: blockList(['192.0.2.0/24', '2001:db8::/32']),
    });
    for (const line of readFileSync(new URL('./fixtures/exim-mainlog', import.meta.url), 'utf8').split('\n')) quiet.add(p.parse(line), Date.now());
    assert.deepEqual(quiet.drain(Date.now()).ips[0]?.sessions, [{ net: '198.51.100.0/24', count: 3 }]);
    assert.throws(() => blockList(['192.0.2.0/33']), /"192\.0\.2\.0\/33" is not an address or CIDR network/);
    assert.equal(clientNet('2001:db8:7:1::25', 128, 64), '2001:db8:7:1::/64');
    assert.equal(clientNet('::ffff:192.0.2.1', 24, 96), '::ffff:0:0/96');
    assert.equal(clientNet('10.1.2.3', 8, 48), '10.0.0.0/8');
  });
});

describe('mailprobe mta-log: usage', () => {
  const tmp = tempDir('mailprobe-mtalog-cli-');
  after(() => tmp.cleanup());
  test('--help, and each usage error names what is wrong (exit 2)', () => {
    const help = runCli(['mta-log', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /usage: mailprobe mta-log --config FILE --id ID --ip IP/);
    const planFile = writePlanFile(tmp.dir);
    const base = ['mta-log', '--config', planFile, '--id', 'old-mx'];
    const env = { MAILPROBE_TOKEN: 't' };
    for (const [args, want] of [
      [['--stdin'], /^mailprobe mta-log: --ip IP required: the server IP\(s\) of the plan this MTA receives on$/m],
      [
        ['--stdin', '--ip', '192.0.2.1'],
        /^mailprobe mta-log: --ip 192\.0\.2\.1: not a server IP of the plan \(cutover\.servers: 127\.0\.0\.2 old, 127\.0\.0\.3 new\)$/m,
      ],
      [['--ip', '127.0.0.2'], /^mailprobe mta-log: --file PATH or --stdin required$/m],
      [['--stdin', '--ip', '127.0.0.2', '--format', 'sendmail'], /^mailprobe mta-log: --format: must be postfix or exim \(got "sendmail"\)$/m],
      [
        ['--stdin', '--ip', '127.0.0.2', '--ignore-client', '10.0.0.0/40'],
        /^mailprobe mta-log: --ignore-client "10\.0\.0\.0\/40" is not an address or CIDR network/m,
      ],
    ] as const) {
      const r = runCli([...base, ...args], env);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});

describe('following a file', () => {
  const tmp = tempDir('mailprobe-follow-');
  after(() => tmp.cleanup());

  test('rotation (rename, late writes to the old file) and truncation lose no line and repeat none', async () => {
    const path = join(tmp.dir, 'mail.log');
    writeFileSync(path, 'before start\n');
    const got: string[] = [];
    const f = followFile({ path, onLine: (l) => got.push(l), pollMs: 20 });
    await waitFor(() => f.position() > 0, 2000);
    appendFileSync(path, 'a1\na2\npart');
    assert.ok(await waitFor(() => got.length === 2, 3000));
    appendFileSync(path, 'ial\n');
    // logrotate: rename, the daemon still writes a line to the old file, then reopens the new one.
    renameSync(path, `${path}.1`);
    appendFileSync(`${path}.1`, 'a3 late in the old file\n');
    writeFileSync(path, 'b1\nb2\n');
    assert.ok(await waitFor(() => got.length === 6, 3000), JSON.stringify(got));
    // copytruncate-style: the file is cut to nothing, then written again.
    truncateSync(path, 0);
    assert.ok(await waitFor(() => f.position() === 0, 3000));
    appendFileSync(path, 'c1\n');
    assert.ok(await waitFor(() => got.length === 7, 3000), JSON.stringify(got));
    await f.stop();
    assert.deepEqual(got, ['a1', 'a2', 'partial', 'a3 late in the old file', 'b1', 'b2', 'c1']);
  });

  test('copytruncate that writes past the old position before the next poll: the new lines read once, from the start', async () => {
    const path = join(tmp.dir, 'copytruncate.log');
    writeFileSync(path, 'before start\n');
    const got: string[] = [];
    const f = followFile({ path, onLine: (l) => got.push(l), pollMs: 50 });
    after(() => f.stop());
    await waitFor(() => f.position() > 0, 2000);
    const old = Array.from({ length: 5 }, (_, i) => `Nov 30 13:00:0${i} mx postfix/smtpd[10${i}]: connect from a${i}[192.0.2.${i}]`);
    appendFileSync(path, `${old.join('\n')}\n`);
    assert.ok(await waitFor(() => got.length === old.length, 3000), JSON.stringify(got));
    const readTo = f.position();
    // logrotate copytruncate, then the daemon writes more than was read before the follower looks
    // again: synchronous calls, so no poll runs in between.
    const fresh = Array.from({ length: 8 }, (_, i) => `Nov 30 13:05:0${i} mx postfix/smtpd[20${i}]: connect from b${i}[198.51.100.${i}]`);
    copyFileSync(path, `${path}.1`);
    truncateSync(path, 0);
    appendFileSync(path, `${fresh.join('\n')}\n`);
    assert.ok(readFileSync(path).length > readTo, 'the file grew past the old position');
    assert.ok(await waitFor(() => got.length >= old.length + fresh.length, 3000), JSON.stringify(got));
    // The same size again with other content (cut and rewritten to the byte): read once more.
    const again = readFileSync(path, 'utf8').replaceAll('b', 'c');
    truncateSync(path, 0);
    appendFileSync(path, again);
    const third = again.trimEnd().split('\n');
    assert.ok(await waitFor(() => got.length >= old.length + 2 * fresh.length, 3000), JSON.stringify(got));
    await waitFor(() => false, 200);
    await f.stop();
    assert.deepEqual(got, [...old, ...fresh, ...third]);
  });

  test('a file that does not exist yet is read whole once it appears', async () => {
    const path = join(tmp.dir, 'later.log');
    const got: string[] = [];
    const f = followFile({ path, onLine: (l) => got.push(l), pollMs: 20 });
    await waitFor(() => false, 100);
    writeFileSync(path, 'x1\nx2\n');
    assert.ok(await waitFor(() => got.length === 2, 3000));
    await f.stop();
    assert.deepEqual(got, ['x1', 'x2']);
  });
});

describe('the collector', () => {
  test('the status page: turning the old server off waits for the old IP to be quiet, and names the networks still delivering', () => {
    const plan = testPlan({ probes: { decommission_quiet: '1h' } });
    let now = Date.parse('2026-12-05T12:00:00Z');
    const model = new StatusModel(plan, { now: () => now });
    const at = (min: number) => now + min * 60_000;
    const mta = (t: number, sessions: { net: string; count: number }[], last: number): CheckResult => ({
      type: 'mta',
      startedAt: t,
      durationSeconds: 0,
      ok: true,
      ips: [{ ip: '127.0.0.2', side: 'old', sessions, messages: [], lastSessionAt: last, quiet: false }],
      lines: 10,
      unknownLines: 0,
    });
    const probe = { id: 'old-mx', region: 'mta', version: '0.1.0' };
    model.accept(probe, [
      mta(
        at(0),
        [
          { net: '198.51.100.0/24', count: 5 },
          { net: 'other', count: 1 },
        ],
        at(0),
      ),
    ]);
    model.accept(probe, [mta(at(1), [{ net: '192.0.2.0/24', count: 9 }], at(1))]);
    const title = 'no inbound session on provider-a (127.0.0.2) for 1h (mailprobe mta-log)';
    const cond = () => model.snapshot().safeToTurnOldOff.conditions.find((c) => c.title === title);
    now = at(30);
    assert.deepEqual(model.snapshot().oldIpTraffic, [
      {
        ip: '127.0.0.2',
        name: 'provider-a',
        lastSessionAt: Date.parse('2026-12-05T12:01:00Z'),
        quietSeconds: 29 * 60,
        quiet: false,
        stillDelivering: [
          { net: '192.0.2.0/24', sessions: 9, messages: 0, lastAt: Date.parse('2026-12-05T12:01:00Z') },
          { net: '198.51.100.0/24', sessions: 5, messages: 0, lastAt: Date.parse('2026-12-05T12:00:00Z') },
          { net: 'other', sessions: 1, messages: 0, lastAt: Date.parse('2026-12-05T12:00:00Z') },
        ],
      },
    ]);
    assert.deepEqual(cond(), {
      title,
      met: false,
      detail: 'last session 2026-12-05T12:01:00Z; still delivering: 192.0.2.0/24 (9 sessions), 198.51.100.0/24 (5 sessions), other (1 session)',
    });
    assert.ok(
      model.snapshot().safeToTurnOldOff.open.some((c) => c.title === title),
      'an open condition',
    );
    // An hour after the last session: met, and the networks are no longer listed.
    now = Date.parse('2026-12-05T13:01:00Z');
    model.accept(probe, [mta(now, [], Date.parse('2026-12-05T12:01:00Z'))]);
    assert.deepEqual(cond(), { title, met: true, detail: 'last session 2026-12-05T12:01:00Z' });
    // /v1/status's field with the same facts.
    assert.deepEqual(model.snapshot().oldIpTraffic, [
      { ip: '127.0.0.2', name: 'provider-a', lastSessionAt: Date.parse('2026-12-05T12:01:00Z'), quietSeconds: 3600, quiet: true, stillDelivering: [] },
    ]);
  });

  test('an mta result naming an IP outside the plan, or the wrong side, is refused with the field', () => {
    const plan = testPlan();
    const r = (ip: string, side: 'old' | 'new'): CheckResult => ({
      type: 'mta',
      startedAt: Date.now(),
      durationSeconds: 0,
      ok: true,
      ips: [{ ip, side, sessions: [], messages: [], lastSessionAt: 0, quiet: false }],
      lines: 0,
      unknownLines: 0,
    });
    assert.equal(serverProblem(plan.cutover.servers, [r('127.0.0.2', 'old')]), undefined);
    assert.match(serverProblem(plan.cutover.servers, [r('192.0.2.1', 'old')]) ?? '', /^results\.0\.ips\.0\.ip: "192\.0\.2\.1" is not a server IP of the plan/);
    assert.match(serverProblem(plan.cutover.servers, [r('127.0.0.2', 'new')]) ?? '', /^results\.0\.ips\.0\.side: 127\.0\.0\.2 is on side old/);
  });
});
