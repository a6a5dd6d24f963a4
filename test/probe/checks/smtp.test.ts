import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { makeLabCerts, type LabCerts } from '../../../lab/mta/certs.js';
import { startMtas, type LabMtas } from '../../../lab/mta/index.js';
import { smtp, smtpCheck, type SmtpSettings, type SmtpTarget } from '../../../probe/checks/smtp.js';
import { SmtpResult, SMTP_PHASES, type SmtpPhase } from '../../../protocol/results.js';
import { startTestCollector } from '../../support/collector.js';
import { testPlan } from '../../../bench/lib/plan.js';
import { timerLag } from '../support.js';
import { batchOf, sampleIn, testCtx } from '../../../bench/lib/smtp-support.js';

const MAIL_HOST = 'mail.company.test';
let certs: LabCerts;
let mtas: LabMtas;

function settings(over: Partial<SmtpSettings> = {}): SmtpSettings {
  return {
    mailHost: MAIL_HOST,
    mode: 'rcpt',
    tls: 'opportunistic',
    from: 'probe@probes.test',
    to: 'postmaster@company.test',
    helo: 'probe.probes.test',
    caFile: certs.caFile,
    connectTimeoutMs: 1000,
    bannerTimeoutMs: 1000,
    commandTimeoutMs: 2000,
    ...over,
  };
}

const target = (side: 'old' | 'new' = 'new', port?: number): SmtpTarget => ({ ip: mtas[side].ip, side, port: port ?? mtas[side].port, mode: 'rcpt' });

async function run(t: SmtpTarget, s: SmtpSettings, signal?: AbortSignal): Promise<SmtpResult> {
  const r = await smtp(t, s, testCtx(signal ? { signal } : {}));
  assert.ok(Value.Check(SmtpResult, r), `result matches the wire schema: ${JSON.stringify([...Value.Errors(SmtpResult, r)].slice(0, 3))}`);
  return r;
}

function phaseNames(r: SmtpResult): SmtpPhase[] {
  return SMTP_PHASES.filter((p) => r.phases[p] !== undefined);
}

before(async () => {
  certs = await makeLabCerts({ mailHost: MAIL_HOST });
  mtas = await startMtas({
    mailHost: MAIL_HOST,
    domain: 'company.test',
    certs,
    implicitTls: true,
    names: { old: 'mx-old.company.test', new: 'mx-new.company.test' },
    auth: { user: 'probe', pass: 'lab-secret' },
  });
  process.env.MAILPROBE_TEST_SMTP_PASS = 'lab-secret';
  process.env.MAILPROBE_TEST_SMTP_BADPASS = 'not-the-secret';
});

after(async () => {
  await mtas.close();
  await certs.cleanup();
});

afterEach(async () => {
  await mtas.setFault('old', null);
  await mtas.setFault('new', null);
});

describe('smtp check against the lab MTAs', () => {
  test('rcpt mode over STARTTLS times every phase and delivers nothing', async () => {
    const before = mtas.new.received.length;
    const r = await run(target('new'), settings());
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(phaseNames(r), ['connect', 'banner', 'ehlo', 'starttls', 'mail', 'rcpt', 'quit']);
    for (const p of phaseNames(r)) assert.ok((r.phases[p] ?? -1) >= 0 && (r.phases[p] ?? 1) < 5, `${p} = ${r.phases[p]}`);
    // smtp-server greets 100 ms after the accept.
    assert.ok(r.phases.banner! >= 0.095 && r.phases.banner! < 0.6, `banner ${r.phases.banner}`);
    assert.equal(r.replyCode, 250);
    assert.equal(r.enhancedCode, undefined, 'smtp-server sends no enhanced codes by default (postfix does: see the postfix test)');
    assert.equal(r.banner, '220 mx-new.company.test ESMTP');
    assert.equal(r.bannerHost, 'mx-new.company.test');
    assert.equal(r.ehloHost, 'mx-new.company.test');
    assert.equal(r.ip, '127.0.0.3');
    assert.equal(r.side, 'new');
    assert.equal(r.mode, 'rcpt');
    assert.equal(r.tls?.version, 'TLSv1.3');
    assert.deepEqual(r.tls?.certNames, [MAIL_HOST]);
    assert.equal(r.tls?.verified, true);
    const days = (r.tls!.certExpiry - Date.now() / 1000) / 86_400;
    assert.ok(days > 29 && days <= 30.01, `expiry in ${days} days`);
    const sum = Object.values(r.phases).reduce((a, b) => a + (b ?? 0), 0);
    assert.ok(sum <= r.durationSeconds + 0.001, `phases ${sum} within duration ${r.durationSeconds}`);
    assert.equal(mtas.new.received.length, before, 'rcpt mode delivers nothing');
  });

  test('data mode delivers one marked message and times DATA', async () => {
    const before = mtas.old.received.length;
    const r = await run(target('old'), settings({ mode: 'data' }));
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(phaseNames(r), ['connect', 'banner', 'ehlo', 'starttls', 'mail', 'rcpt', 'data', 'quit']);
    assert.equal(r.replyCode, 250);
    assert.equal(r.bannerHost, 'mx-old.company.test');
    assert.equal(mtas.old.received.length, before + 1);
    const got = mtas.old.received.at(-1)!;
    assert.deepEqual(got.to, ['postmaster@company.test']);
    assert.equal(got.from, 'probe@probes.test');
    assert.match(got.raw.toString(), /^X-Mailprobe-Check: smtp; probe=p-eu; ip=127\.0\.0\.2\r$/m);
  });

  test('implicit TLS (465 style): the handshake is the starttls phase', async () => {
    const r = await run(target('new', mtas.new.tlsPort), settings({ tls: 'implicit' }));
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(
      phaseNames(r),
      ['connect', 'starttls', 'banner', 'ehlo', 'mail', 'rcpt', 'quit'].sort((a, b) => SMTP_PHASES.indexOf(a as never) - SMTP_PHASES.indexOf(b as never)),
    );
    assert.equal(r.tls?.verified, true);
    assert.equal(r.port, mtas.new.tlsPort);
  });

  test('tls none stays in plaintext', async () => {
    const r = await run(target('old'), settings({ tls: 'none' }));
    assert.equal(r.ok, true, r.message);
    assert.equal(r.tls, undefined);
    assert.deepEqual(phaseNames(r), ['connect', 'banner', 'ehlo', 'mail', 'rcpt', 'quit']);
  });

  test('AUTH after STARTTLS is timed; wrong credentials are auth_failed', async () => {
    const good = await run(target('new'), settings({ auth: { user: 'probe', passEnv: 'MAILPROBE_TEST_SMTP_PASS' } }));
    assert.equal(good.ok, true, good.message);
    assert.deepEqual(phaseNames(good), ['connect', 'banner', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'quit']);
    const bad = await run(target('new'), settings({ auth: { user: 'probe', passEnv: 'MAILPROBE_TEST_SMTP_BADPASS' } }));
    assert.equal(bad.ok, false);
    assert.equal(bad.errorClass, 'auth_failed');
    assert.equal(bad.code, 'smtp_auth_failed');
    assert.equal(bad.phase, 'auth');
    assert.equal(bad.replyCode, 535);
    assert.equal(bad.enhancedCode, '5.7.8');
    assert.equal(bad.phases.mail, undefined);
  });

  test('an empty password variable is bad config (throws)', async () => {
    await assert.rejects(
      smtp(target('new'), settings({ auth: { user: 'probe', passEnv: 'MAILPROBE_TEST_SMTP_UNSET' } }), testCtx()),
      /MAILPROBE_TEST_SMTP_UNSET/,
    );
  });
});

describe('smtp check error classes', () => {
  test('refused connection: connect_refused', async () => {
    await mtas.setFault('old', { kind: 'refuse' });
    const r = await run(target('old'), settings());
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'connect_refused');
    assert.equal(r.code, 'smtp_connect_refused');
    assert.equal(r.phase, 'connect');
    assert.deepEqual(r.phases, {});
    assert.equal(r.replyCode, undefined);
    await mtas.setFault('old', null);
    const back = await run(target('old'), settings());
    assert.equal(back.ok, true, 'the MTA listens again on the same port after the fault is cleared');
  });

  test('a connect that hangs: connect_timeout after connect_timeout', async () => {
    await mtas.setFault('new', { kind: 'blackhole' });
    const r = await run(target('new'), settings({ connectTimeoutMs: 300 }));
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'connect_timeout');
    assert.equal(r.code, 'smtp_connect_timeout');
    assert.equal(r.phase, 'connect');
    assert.ok(r.durationSeconds >= 0.3 && r.durationSeconds < 1, `duration ${r.durationSeconds}`);
  });

  test('a banner delayed by 200 ms is measured at 200 ms ± 10 ms (plus what a busy machine delays timers)', async () => {
    await mtas.setFault('old', { kind: 'slow-banner', ms: 200 });
    // The probe reads the banner on this process's event loop: on a busy machine every reading is
    // late by about as much as the loop's timers (their 90th percentile), which the 10 ms are not about.
    const lag = timerLag();
    const measured: number[] = [];
    const actual: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await run(target('old'), settings());
      assert.equal(r.ok, true, r.message);
      measured.push(r.phases.banner! * 1000);
      actual.push(mtas.old.bannerDelays.at(-1)!);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Against what the lab actually did (its timer fires late on a loaded machine)…
    const vsActual = median(measured.map((m, i) => Math.abs(m - actual[i]!)));
    // …and against the 200 ms it was told: errors only ever add time, so the best run shows the probe's own error.
    const best = Math.min(...measured.map((m) => Math.abs(m - 200)));
    console.log(
      `# banner 200 ms: measured ${measured.map((m) => m.toFixed(2)).join(', ')} ms; lab sent at ${actual.map((a) => a.toFixed(2)).join(', ')} ms; ` +
        `median |measured - sent| ${vsActual.toFixed(2)} ms; best |measured - 200| ${best.toFixed(2)} ms`,
    );
    lag.stop();
    const allowed = 10 + lag.quantile(0.9);
    assert.ok(vsActual <= allowed, `median error against the lab's send time ${vsActual} ms (allowed ${allowed.toFixed(1)} ms)`);
    assert.ok(best <= allowed, `best error against 200 ms: ${best} ms (allowed ${allowed.toFixed(1)} ms)`);
  });

  test('each phase carries its own injected delay (one session, data mode over STARTTLS)', async () => {
    // Distinct delays 150 ms apart: a phase folded into another or two phases swapped land far
    // outside their window. Both EHLOs (before and after STARTTLS) are delayed: ehlo is their sum.
    const ms = { ehlo: 100, starttls: 350, mail: 500, rcpt: 650, data: 800, quit: 950 } as const;
    await mtas.setFault('old', { kind: 'slow-phases', ms });
    const lag = timerLag();
    const r = await run(target('old'), settings({ mode: 'data', commandTimeoutMs: 3000 }));
    const maxLag = lag.stop();
    assert.equal(r.ok, true, r.message);
    const expected: Record<string, number> = { ...ms, ehlo: 2 * ms.ehlo };
    const got = Object.fromEntries(Object.keys(expected).map((p) => [p, Math.round((r.phases[p as SmtpPhase] ?? -1) * 1e4) / 10]));
    console.log(`# injected ${JSON.stringify(expected)} ms; measured ${JSON.stringify(got)} ms; event-loop lag up to ${maxLag.toFixed(1)} ms`);
    // A timer fires late on a busy machine, never early: at least the delay, and less than the
    // 150 ms between two phases' delays more (starttls adds a TLS handshake on a loaded machine).
    // A pipelined command's phase starts when the probe read the reply before it (the server
    // answers it only then), and that read is late by the event loop's lag: so much shorter.
    for (const [p, want] of Object.entries(expected)) {
      assert.ok(
        got[p]! >= want - 1 - maxLag && got[p]! <= want + 120,
        `${p}: measured ${got[p]} ms, injected ${want} ms, lag up to ${maxLag} ms (${JSON.stringify(got)})`,
      );
    }
  });

  test('no greeting in time: banner_timeout', async () => {
    await mtas.setFault('old', { kind: 'slow-banner', ms: 2000 });
    const r = await run(target('old'), settings({ bannerTimeoutMs: 300 }));
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'banner_timeout');
    assert.equal(r.code, 'smtp_banner_timeout');
    assert.equal(r.phase, 'banner');
    assert.ok(r.phases.connect !== undefined && r.phases.banner === undefined);
    assert.ok(r.durationSeconds >= 0.3 && r.durationSeconds < 1, `duration ${r.durationSeconds}`);
  });

  test('greylisting at RCPT: temp_fail with the 4xx and its enhanced code', async () => {
    await mtas.setFault('new', { kind: 'temp-fail', at: 'rcpt' });
    const r = await run(target('new'), settings());
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'temp_fail');
    assert.equal(r.code, 'smtp_temp_fail');
    assert.equal(r.phase, 'rcpt');
    assert.equal(r.replyCode, 451);
    assert.equal(r.enhancedCode, '4.7.1');
    assert.ok(r.phases.rcpt !== undefined && r.phases.quit !== undefined, 'the refused RCPT is timed and the session quits politely');
  });

  test('a 421 instead of the greeting: temp_fail in the banner phase', async () => {
    await mtas.setFault('new', { kind: 'temp-fail', at: 'connect', message: '4.3.2 Service shutting down' });
    const r = await run(target('new'), settings());
    assert.equal(r.errorClass, 'temp_fail');
    assert.equal(r.phase, 'banner');
    assert.equal(r.replyCode, 421);
    assert.equal(r.enhancedCode, '4.3.2');
  });

  test('5xx at MAIL FROM: perm_fail', async () => {
    await mtas.setFault('old', { kind: 'perm-fail', at: 'mail' });
    const r = await run(target('old'), settings());
    assert.equal(r.errorClass, 'perm_fail');
    assert.equal(r.code, 'smtp_perm_fail');
    assert.equal(r.phase, 'mail');
    assert.equal(r.replyCode, 550);
    assert.equal(r.enhancedCode, '5.7.1');
    assert.equal(r.phases.rcpt, undefined);
  });

  test('5xx after DATA in data mode: perm_fail in the data phase', async () => {
    await mtas.setFault('old', { kind: 'perm-fail', at: 'data', code: 554, message: '5.6.0 Content rejected' });
    const r = await run(target('old'), settings({ mode: 'data' }));
    assert.equal(r.errorClass, 'perm_fail');
    assert.equal(r.phase, 'data');
    assert.equal(r.replyCode, 554);
    assert.equal(r.enhancedCode, '5.6.0');
    assert.ok(r.phases.data !== undefined);
  });

  test('relaying to a foreign domain is refused (the lab is no open relay)', async () => {
    const r = await run(target('new'), settings({ to: 'someone@elsewhere.test' }));
    assert.equal(r.errorClass, 'perm_fail');
    assert.equal(r.phase, 'rcpt');
    assert.equal(r.replyCode, 550);
  });

  test('connection dropped after DATA: protocol', async () => {
    await mtas.setFault('new', { kind: 'drop-after-data' });
    const r = await run(target('new'), settings({ mode: 'data' }));
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'protocol');
    assert.equal(r.code, 'smtp_closed');
    assert.equal(r.phase, 'data');
  });

  test('a server that stops answering: timeout', async () => {
    await mtas.setFault('new', { kind: 'stall', at: 'rcpt' });
    const r = await run(target('new'), settings({ commandTimeoutMs: 300 }));
    assert.equal(r.errorClass, 'timeout');
    assert.equal(r.code, 'smtp_timeout');
    assert.equal(r.phase, 'rcpt');
    assert.ok(r.durationSeconds >= 0.3 && r.durationSeconds < 1.5, `duration ${r.durationSeconds}`);
  });

  test('the runtime aborting the check closes the socket and gives timeout', async () => {
    await mtas.setFault('new', { kind: 'stall', at: 'mail' });
    const ac = new AbortController();
    const stalls = mtas.new.stalls;
    let abortedAt = 0;
    const timer = setInterval(() => {
      // Abort 100 ms after the server swallowed MAIL FROM.
      if (mtas.new.stalls > stalls && abortedAt === 0) abortedAt = performance.now() + 100;
      if (abortedAt && performance.now() >= abortedAt) {
        clearInterval(timer);
        ac.abort(new Error('check timeout'));
      }
    }, 5);
    const t0 = performance.now();
    const r = await run(target('new'), settings({ commandTimeoutMs: 10_000 }), ac.signal);
    const returnedAfterAbort = performance.now() - abortedAt;
    clearInterval(timer);
    assert.equal(r.errorClass, 'timeout');
    assert.equal(r.code, 'smtp_aborted');
    assert.equal(r.phase, 'mail');
    assert.match(r.message ?? '', /check timeout/);
    assert.ok(returnedAfterAbort < 200, `returned ${returnedAfterAbort} ms after the abort`);
    assert.ok(r.durationSeconds * 1000 <= performance.now() - t0 + 1);
    for (let i = 0; i < 40 && mtas.connections('new') > 0; i++) await new Promise((res) => setTimeout(res, 25));
    assert.equal(mtas.connections('new'), 0, 'the probe closed its socket');
  });

  test('a certificate for the wrong name: cert_invalid, names still recorded', async () => {
    await mtas.setFault('old', { kind: 'bad-cert' });
    const r = await run(target('old'), settings());
    assert.equal(r.ok, false);
    assert.equal(r.errorClass, 'cert_invalid');
    assert.equal(r.code, 'smtp_cert_invalid');
    assert.equal(r.phase, 'starttls');
    assert.deepEqual(r.tls?.certNames, ['wrong.example.test']);
    assert.equal(r.tls?.verified, false);
    assert.match(r.message ?? '', /wrong\.example\.test/);
    assert.equal(r.phases.mail, undefined, 'no mail over a certificate that does not verify');
    assert.ok(r.phases.quit !== undefined, 'but a polite QUIT');
  });

  test('a wrong certificate on the implicit-TLS port: cert_invalid too', async () => {
    await mtas.setFault('new', { kind: 'bad-cert' });
    const r = await run(target('new', mtas.new.tlsPort), settings({ tls: 'implicit' }));
    assert.equal(r.errorClass, 'cert_invalid');
    assert.equal(r.phase, 'starttls');
    assert.deepEqual(r.tls?.certNames, ['wrong.example.test']);
    assert.ok(r.phases.banner !== undefined && r.phases.mail === undefined);
  });

  test('a certificate from an unknown CA: cert_invalid with the right names', async () => {
    const r = await run(target('new'), settings({ caFile: undefined }));
    assert.equal(r.errorClass, 'cert_invalid');
    assert.deepEqual(r.tls?.certNames, [MAIL_HOST]);
    assert.equal(r.tls?.verified, false);
    assert.match(r.message ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  test('a failing TLS handshake: tls_error', async () => {
    await mtas.setFault('new', { kind: 'broken-tls' });
    const r = await run(target('new'), settings());
    assert.equal(r.errorClass, 'tls_error');
    assert.equal(r.code, 'smtp_tls_failed');
    assert.equal(r.phase, 'starttls');
  });

  test('implicit TLS against a plaintext port: tls_error', async () => {
    const r = await run(target('new'), settings({ tls: 'implicit' }));
    assert.equal(r.errorClass, 'tls_error');
    assert.equal(r.code, 'smtp_tls_failed');
    assert.equal(r.phase, 'starttls');
    assert.ok(r.phases.connect !== undefined && r.phases.starttls === undefined);
  });

  test('STARTTLS not offered: tls_error when required, plaintext when opportunistic', async () => {
    await mtas.setFault('old', { kind: 'no-starttls' });
    const req = await run(target('old'), settings({ tls: 'required' }));
    assert.equal(req.errorClass, 'tls_error');
    assert.equal(req.code, 'smtp_tls_unavailable');
    assert.equal(req.phase, 'starttls');
    const opp = await run(target('old'), settings());
    assert.equal(opp.ok, true, opp.message);
    assert.equal(opp.tls, undefined);
  });

  test('bytes that are no SMTP greeting: protocol', async () => {
    await mtas.setFault('new', { kind: 'garbage' });
    const r = await run(target('new'), settings());
    assert.equal(r.errorClass, 'protocol');
    assert.equal(r.code, 'smtp_banner_invalid');
    assert.equal(r.phase, 'banner');
    assert.match(r.message ?? '', /HTTP\/1\.1 400/);
  });
});

/** A scripted SMTP peer for reply shapes smtp-server never sends. */
function scripted(greeting: string, replies: Record<string, string>): Promise<{ server: Server; port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((sock: Socket) => {
    sock.write(greeting);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        seen.push(line);
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        sock.write(replies[verb] ?? '502 5.5.2 what?\r\n');
        if (verb === 'QUIT') sock.end();
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.4', () => resolve({ server, port: (server.address() as { port: number }).port, seen })));
}

describe('smtp check reply shapes', () => {
  test('multi-line greeting without "ESMTP" and multi-line replies', async () => {
    const peer = await scripted('220-mx1.example.test welcome\r\n220-no extended words here\r\n220 ready\r\n', {
      EHLO: '250-mx1.example.test greets you\r\n250-PIPELINING\r\n250 8BITMIME\r\n',
      MAIL: '250 2.1.0 sender ok\r\n',
      RCPT: '250-2.1.5 recipient\r\n250 2.1.5 ok, really\r\n',
      RSET: '250 2.0.0 reset\r\n',
      QUIT: '221 2.0.0 bye\r\n',
    });
    try {
      const r = await run({ ip: '127.0.0.4', side: 'new', port: peer.port, mode: 'rcpt' }, settings({ tls: 'opportunistic' }));
      assert.equal(r.ok, true, r.message);
      assert.equal(r.banner, '220-mx1.example.test welcome\n220-no extended words here\n220 ready');
      assert.equal(r.bannerHost, 'mx1.example.test');
      assert.equal(r.ehloHost, 'mx1.example.test');
      assert.equal(r.replyCode, 250);
      assert.equal(r.enhancedCode, '2.1.5');
      assert.deepEqual(peer.seen, ['EHLO probe.probes.test', 'MAIL FROM:<probe@probes.test>', 'RCPT TO:<postmaster@company.test>', 'RSET', 'QUIT']);
    } finally {
      peer.server.close();
    }
  });

  test('a server that only knows HELO', async () => {
    const peer = await scripted('220 old.example.test SMTP Sendmail\r\n', {
      EHLO: '500 5.5.1 unknown command\r\n',
      HELO: '250 old.example.test\r\n',
      MAIL: '250 ok\r\n',
      RCPT: '250 ok\r\n',
      RSET: '250 ok\r\n',
      QUIT: '221 bye\r\n',
    });
    try {
      const r = await run({ ip: '127.0.0.4', side: 'old', port: peer.port, mode: 'rcpt' }, settings());
      assert.equal(r.ok, true, r.message);
      assert.equal(r.ehloHost, 'old.example.test');
      assert.equal(r.enhancedCode, undefined);
      assert.equal(r.replyCode, 250);
    } finally {
      peer.server.close();
    }
  });
});

describe('smtp check on broken peers', () => {
  test('a garbage reply to RCPT: protocol in the rcpt phase', async () => {
    const peer = await scripted('220 mx.example.test ESMTP\r\n', {
      EHLO: '250 mx.example.test\r\n',
      MAIL: '250 ok\r\n',
      RCPT: 'this is not SMTP\r\n',
      RSET: '250 ok\r\n',
      QUIT: '221 bye\r\n',
    });
    try {
      const r = await run({ ip: '127.0.0.4', side: 'new', port: peer.port, mode: 'rcpt' }, settings());
      assert.equal(r.errorClass, 'protocol');
      assert.equal(r.code, 'smtp_protocol');
      assert.equal(r.phase, 'rcpt');
      assert.equal(r.replyCode, undefined);
      assert.match(r.message ?? '', /this is not SMTP/);
    } finally {
      peer.server.close();
    }
  });

  test('a server that hangs up after the greeting: protocol (closed) in the ehlo phase', async () => {
    const server = createServer((sock) => {
      sock.on('error', () => {});
      sock.write('220 mx.example.test ESMTP\r\n');
      sock.once('data', () => sock.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.4', resolve));
    try {
      const r = await run({ ip: '127.0.0.4', side: 'new', port: (server.address() as { port: number }).port, mode: 'rcpt' }, settings());
      assert.equal(r.errorClass, 'protocol');
      assert.equal(r.code, 'smtp_closed');
      assert.equal(r.phase, 'ehlo');
      assert.equal(r.bannerHost, 'mx.example.test');
    } finally {
      server.close();
    }
  });
});

describe('smtp results at the collector', () => {
  test('both destination IPs produce the SMTP metrics of protocol/metrics.ts', async () => {
    const plan = testPlan({ probes: { smtp: { ca_file: certs.caFile } } });
    const jobs = smtpCheck.targets(plan);
    assert.deepEqual(
      jobs.map((j) => j.key),
      ['127.0.0.2:25', '127.0.0.3:25'],
    );
    const results = [await run(target('old'), settings()), await run(target('new'), settings())];
    await mtas.setFault('new', { kind: 'temp-fail', at: 'rcpt' });
    results.push(await run(target('new'), settings()));
    const c = await startTestCollector(plan);
    try {
      const res = await c.push(batchOf(results));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const text = await c.scrape();
      const sample = (name: string, labels: Record<string, string>) => sampleIn(text, name, labels);
      for (const [ip, side] of [
        ['127.0.0.2', 'old'],
        ['127.0.0.3', 'new'],
      ] as const) {
        for (const phase of ['connect', 'banner', 'ehlo', 'starttls', 'mail', 'rcpt', 'quit']) {
          assert.ok((sample('mailprobe_smtp_duration_seconds_count', { ip, side, phase }) ?? 0) >= 1, `${ip} ${phase}`);
        }
        assert.equal(sample('mailprobe_smtp_checks_total', { ip, side, result: 'success' }), 1);
        assert.ok((sample('mailprobe_tls_cert_expiry_timestamp_seconds', { ip, side }) ?? 0) > Date.now() / 1000);
        assert.equal(sample('mailprobe_tls_cert_valid', { ip, side }), 1);
      }
      assert.equal(sample('mailprobe_smtp_checks_total', { ip: '127.0.0.3', result: 'temp_fail' }), 1);
      assert.equal(sample('mailprobe_smtp_up', { ip: '127.0.0.3', side: 'new' }), 0);
      assert.equal(sample('mailprobe_smtp_up', { ip: '127.0.0.2', side: 'old' }), 1);
    } finally {
      await c.close();
    }
  });
});
