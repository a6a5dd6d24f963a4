import assert from 'node:assert/strict';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startAuthoritative, type Authoritative } from '../../../lab/dns/authoritative.js';
import { generateDkimKey } from '../../../lab/dns/zone.js';
import { dovecotUnavailable, startDovecot, type LabDovecot } from '../../../lab/dovecot.js';
import { makeLabCerts, type LabCerts } from '../../../lab/mta/certs.js';
import { startMtas, type LabMtas } from '../../../lab/mta/index.js';
import { startReceiver, type LabReceiver } from '../../../lab/receiver.js';
import { inbox, inboxCheck, type InboxSettings, type InboxTarget } from '../../../probe/checks/inbox.js';
import { dnsResolver } from '../../../probe/sink/index.js';
import { InboxResult } from '../../../protocol/checks/inbox.js';
import { batchOf, sampleIn, testCtx } from '../../../bench/lib/smtp-support.js';
import { planProblemsOf, testPlan } from '../../../bench/lib/plan.js';
import { startTestCollector } from '../../support/collector.js';

const MAIL_HOST = 'mail.company.test';
const FROM = 'mailprobe@company.test';
const SEED = 'seed@gmail.test';
const PASS = 'seed-password-1';
const SECRET_ENV = 'MAILPROBE_TEST_INBOX_SECRET';
const PASS_ENV = 'MAILPROBE_TEST_INBOX_PASS';
const env = { [SECRET_ENV]: 'inbox-test-secret-0123456789', [PASS_ENV]: PASS };
Object.assign(process.env, env);

let dns: Authoritative;
let certs: LabCerts;
let dovecot: LabDovecot;
let receiver: LabReceiver;
let mtas: LabMtas;
const key = generateDkimKey();

before(async () => {
  const why = dovecotUnavailable();
  if (why) throw new Error(why);
  // SPF lists only the old IP; both sides sign with the domain's DKIM key (DMARC passes by DKIM).
  dns = await startAuthoritative({
    domain: 'company.test',
    mailHost: MAIL_HOST,
    spf: 'old',
    dmarc: 'reject',
    dkimKey: key,
    initial: { ttl: 60, serve: 'old' },
  });
  certs = await makeLabCerts({ mailHost: MAIL_HOST });
  dovecot = await startDovecot({ users: [{ user: SEED, pass: PASS }] });
  receiver = await startReceiver({
    name: 'mx.gmail.test',
    domains: ['gmail.test'],
    lmtp: { host: dovecot.host, port: dovecot.lmtpPort },
    resolver: dnsResolver(dns.address),
  });
  const dkim = { domainName: 'company.test', keySelector: 's2026', privateKey: key.privateKey };
  mtas = await startMtas({
    mailHost: MAIL_HOST,
    domain: 'company.test',
    certs,
    dkim: { old: dkim, new: dkim },
    names: { old: 'mx-old.company.test', new: 'mx-new.company.test' },
    routes: [{ domain: 'gmail.test', host: receiver.host, port: receiver.port }],
  });
});

after(async () => {
  await mtas?.close();
  await receiver?.close();
  await dovecot?.stop();
  await dns?.close();
  await certs?.cleanup();
});

afterEach(async () => {
  await mtas.setFault('old', null);
  await mtas.setFault('new', null);
  receiver.setPlacement('127.0.0.2', null);
  receiver.setPlacement('127.0.0.3', null);
});

function settings(over: Partial<InboxSettings> = {}, mailbox: Partial<InboxSettings['mailbox']> = {}): InboxSettings {
  return {
    smtp: {
      mailHost: MAIL_HOST,
      mode: 'data',
      tls: 'opportunistic',
      from: FROM,
      to: 'postmaster@company.test',
      helo: 'probe.probes.test',
      caFile: certs.caFile,
      connectTimeoutMs: 2000,
      bannerTimeoutMs: 2000,
      commandTimeoutMs: 4000,
    },
    mailbox: {
      receiver: 'gmail',
      address: SEED,
      host: dovecot.host,
      port: dovecot.imapPort,
      tls: 'none',
      user: SEED,
      passwordEnv: PASS_ENV,
      inboxFolder: 'INBOX',
      spamFolders: [],
      ...mailbox,
    },
    from: FROM,
    secretEnv: SECRET_ENV,
    deadlineMs: 8000,
    everyMs: 0,
    pollMs: 100,
    imapTimeoutMs: 4000,
    ...over,
  };
}

const via = (side: 'old' | 'new'): InboxTarget => ({ receiver: 'gmail', ip: mtas[side].ip, side, port: mtas[side].port });

async function run(t: InboxTarget, s: InboxSettings, ctx = testCtx()): Promise<InboxResult> {
  const out = await inbox(t, s, ctx);
  assert.equal(out.length, 1);
  const r = out[0] as InboxResult;
  assert.ok(Value.Check(InboxResult, r), `result matches the wire schema: ${JSON.stringify([...Value.Errors(InboxResult, r)].slice(0, 3))}`);
  return r;
}

/** Messages per folder of the seed mailbox, read over IMAP. */
async function counts(): Promise<Record<string, number>> {
  const c = new ImapFlow({ host: dovecot.host, port: dovecot.imapPort, secure: false, doSTARTTLS: false, auth: { user: SEED, pass: PASS }, logger: false });
  await c.connect();
  try {
    const out: Record<string, number> = {};
    for (const f of await c.list()) {
      const st = await c.status(f.path, { messages: true });
      out[f.path] = st ? (st.messages ?? 0) : -1;
    }
    return out;
  } finally {
    await c.logout();
  }
}

describe('inbox check against a real Dovecot behind a lab receiver', () => {
  test('via the old IP: found in INBOX, receiver verdicts pass, the receiver saw 127.0.0.2, deleted; other mail untouched', async () => {
    // Someone else's mail in the seed mailbox, delivered over LMTP.
    const lmtp = nodemailer.createTransport({ host: dovecot.host, port: dovecot.lmtpPort, lmtp: true, ignoreTLS: true } as never);
    await lmtp.sendMail({
      envelope: { from: 'friend@elsewhere.test', to: [SEED] },
      raw: 'From: friend@elsewhere.test\r\nSubject: hello\r\nMessage-ID: <x@elsewhere.test>\r\n\r\nhi\r\n',
    });
    lmtp.close();
    const r = await run(via('old'), settings());
    assert.equal(r.ok, true, r.message);
    assert.equal(r.placement, 'inbox');
    assert.equal(r.folder, 'INBOX');
    assert.equal(r.viaIp, '127.0.0.2');
    assert.equal(r.deliveringIp, '127.0.0.2');
    assert.deepEqual(r.verdicts, { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none' });
    assert.ok(r.latencySeconds !== undefined && r.latencySeconds >= 0 && r.latencySeconds <= r.durationSeconds, `latency ${r.latencySeconds}`);
    assert.match(r.messageId, /^[0-9a-f]{24}$/);
    assert.deepEqual(await counts(), { INBOX: 1, Junk: 0, Sent: 0, Trash: 0 }, 'ours deleted, the friend’s message still there');
  });

  test('via the new IP, filed as spam by the receiver: Junk (\\Junk), SPF fails there', async () => {
    receiver.setPlacement('127.0.0.3', 'spam');
    const r = await run(via('new'), settings());
    assert.equal(r.ok, true, r.message);
    assert.equal(r.placement, 'spam');
    assert.equal(r.folder, 'Junk');
    assert.equal(r.deliveringIp, '127.0.0.3');
    assert.deepEqual(r.verdicts, { spf: 'fail', dkim: 'pass', dmarc: 'pass', arc: 'none' });
    assert.equal((await counts()).Junk, 0, 'deleted from Junk');
  });

  test('a configured spam folder name counts as spam; a folder neither inbox nor spam is other', async () => {
    receiver.setPlacement('127.0.0.2', 'other');
    const other = await run(via('old'), settings());
    assert.equal(other.placement, 'other', other.message);
    assert.equal(other.folder, 'Other');
    receiver.setPlacement('127.0.0.2', 'other');
    const named = await run(via('old'), settings({}, { spamFolders: ['Other'] }));
    assert.equal(named.placement, 'spam', named.message);
    assert.equal(named.folder, 'Other');
  });

  test('mail that never arrives is lost at the deadline', async () => {
    await mtas.setFault('new', { kind: 'relay-drop' });
    const r = await run(via('new'), settings({ deadlineMs: 800, pollMs: 200 }));
    assert.equal(r.ok, false);
    assert.equal(r.placement, 'lost');
    assert.equal(r.errorClass, 'lost');
    assert.equal(r.code, 'inbox_lost');
    assert.ok(r.durationSeconds >= 0.8, `waited the deadline: ${r.durationSeconds}`);
  });

  test('a copy with our Message-ID but a body the signature does not cover is not ours: not counted, not deleted', async () => {
    // The receiver drops the real message; a tampered copy (same headers, other body) lands in INBOX.
    receiver.setPlacement('127.0.0.2', 'drop');
    const before = mtas.old.received.length;
    const forge = (async () => {
      while (mtas.old.received.length === before) await new Promise((r) => setTimeout(r, 20));
      const raw = mtas.old.received.at(-1)?.raw.toString('latin1') ?? '';
      const tampered = `${raw.slice(0, raw.indexOf('\r\n\r\n'))}\r\n\r\nPlease wire the money.\r\n`;
      const lmtp = nodemailer.createTransport({ host: dovecot.host, port: dovecot.lmtpPort, lmtp: true, ignoreTLS: true } as never);
      await lmtp.sendMail({ envelope: { from: FROM, to: [SEED] }, raw: tampered });
      lmtp.close();
    })();
    const inboxBefore = (await counts()).INBOX ?? 0;
    const r = await run(via('old'), settings({ deadlineMs: 1500, pollMs: 100 }));
    await forge;
    assert.equal(r.placement, 'lost', r.message);
    assert.equal((await counts()).INBOX, inboxBefore + 1, 'the tampered copy is still there');
  });

  test('IMAP failures are classified failed results, and a mailbox that cannot be read costs no message', async () => {
    const sentBefore = mtas.old.received.length;
    const bad = await run(via('old'), settings({}, { passwordEnv: 'MAILPROBE_TEST_INBOX_WRONG' }), ctxWith({ MAILPROBE_TEST_INBOX_WRONG: 'wrong' }));
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'imap_login_refused');
    assert.equal(bad.errorClass, 'auth_failed');
    assert.equal(bad.phase, 'imap:connect');
    assert.equal(bad.placement, undefined);
    const missing = await run(via('old'), settings({}, { spamFolders: ['Bulk'] }));
    assert.equal(missing.code, 'imap_mailbox_missing');
    assert.equal(missing.errorClass, 'mailbox_missing');
    assert.match(missing.message ?? '', /Bulk at gmail/);
    const tls = await run(via('old'), settings({ imapTimeoutMs: 1500 }, { tls: 'implicit' }));
    assert.equal(tls.errorClass, 'tls_error', tls.message);
    assert.equal(tls.code, 'imap_tls_failed');
    const refused = await run(via('old'), settings({}, { port: 1 }));
    assert.equal(refused.code, 'imap_connect_refused', refused.message);
    assert.equal(mtas.old.received.length, sentBefore, 'nothing sent');
  });

  test('IMAP lost after the send: the message left in the mailbox is deleted at the next attempt, other mail untouched', async () => {
    // A proxy to Dovecot's IMAP that drops the connection at the first SEARCH: the one after the send.
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const upstream = tcpConnect({ host: dovecot.host, port: dovecot.imapPort });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.pipe(client);
      client.on('data', (c: Buffer) => {
        if (/SEARCH/i.test(c.toString('latin1'))) {
          client.destroy();
          upstream.destroy();
        } else upstream.write(c);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    after(() => {
      for (const s of sockets) s.destroy();
      proxy.close();
    });
    const port = (proxy.address() as { port: number }).port;
    const baseline = await counts();
    const ctx = testCtx();
    const cut = await run(via('old'), settings({ imapTimeoutMs: 2000 }, { host: '127.0.0.1', port }), ctx);
    assert.equal(cut.ok, false);
    assert.equal(cut.phase, 'imap:search', cut.message);
    // The receiver delivers it all the same: ours, left behind.
    let now = baseline;
    for (let i = 0; i < 100 && (now.INBOX ?? 0) === (baseline.INBOX ?? 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = await counts();
    }
    assert.deepEqual(now, { ...baseline, INBOX: (baseline.INBOX ?? 0) + 1 }, 'the first attempt left its message');
    // The next attempt (the same target's state), IMAP working: its own message and the one left are deleted.
    const next = await run(via('old'), settings(), ctx);
    assert.equal(next.ok, true, next.message);
    assert.equal(next.placement, 'inbox');
    assert.deepEqual(await counts(), baseline, 'both of ours deleted; the friend’s and the tampered copy still there');
  });

  test('one attempt per target per probes.inbox.every', async () => {
    const ctx = testCtx();
    const first = await inbox(via('old'), settings({ everyMs: 3_600_000 }), ctx);
    assert.equal(first.length, 1);
    assert.equal(first[0]?.placement, 'inbox');
    assert.deepEqual(await inbox(via('old'), settings({ everyMs: 3_600_000 }), ctx), [], 'within the hour: nothing sent, no result');
  });
});

/** A context whose run reads these extra environment variables (set for the process too). */
function ctxWith(extra: Record<string, string>) {
  Object.assign(process.env, extra);
  return testCtx();
}

describe('inbox from the plan', () => {
  const mailbox = { receiver: 'gmail', address: SEED, imap: { host: 'imap.gmail.com', user: SEED, password_env: PASS_ENV } };
  test('targets per mailbox and server IP, defaults, timeout, and refusal to start without its secrets', () => {
    const plan = testPlan({
      probes: {
        inbox: { mailboxes: [mailbox, { ...mailbox, receiver: 'm365', imap: { host: 'outlook.office365.com', user: 'x', token_env: 'M365_TOKEN' } }] },
      },
    });
    assert.deepEqual(
      inboxCheck.targets(plan).map((j) => j.key),
      ['gmail:127.0.0.2:25', 'gmail:127.0.0.3:25', 'm365:127.0.0.2:25', 'm365:127.0.0.3:25'],
    );
    const s = inboxCheck.targets(plan)[0]!.settings;
    assert.deepEqual(
      { port: s.mailbox.port, tls: s.mailbox.tls, inbox: s.mailbox.inboxFolder, every: s.everyMs, deadline: s.deadlineMs, secret: s.secretEnv },
      { port: 993, tls: 'implicit', inbox: 'INBOX', every: 3_600_000, deadline: 600_000, secret: 'MAILPROBE_RT_SECRET' },
    );
    assert.equal(inboxCheck.timeoutMs?.(plan), 600_000 + 2 * plan.probes.timeout);
    assert.deepEqual(inboxCheck.targets(testPlan()), []);
    assert.deepEqual(inboxCheck.setupProblems?.(plan, { MAILPROBE_RT_SECRET: 'x'.repeat(16), [PASS_ENV]: 'p' }), [
      'environment variable M365_TOKEN (probes.inbox.mailboxes[1].imap.token_env) is not set: it must hold the IMAP OAuth2 access token of x at outlook.office365.com',
    ]);
    assert.match(
      inboxCheck.setupProblems?.(plan, { [PASS_ENV]: 'p', M365_TOKEN: 't' })[0] ?? '',
      /MAILPROBE_RT_SECRET \(probes\.inbox\.secret_env\) is not set/,
    );
  });

  test('bad mailbox config names the path and the rule', () => {
    assert.deepEqual(planProblemsOf({ probes: { inbox: { mailboxes: [{ ...mailbox, receiver: 'Gmail!' }] } } }), [
      'probes.inbox.mailboxes[0].receiver: must be a receiver name such as gmail, m365, yahoo or own (lower case, at most 32)',
    ]);
    assert.deepEqual(planProblemsOf({ probes: { inbox: { mailboxes: [mailbox, mailbox] } } }), [
      'probes.inbox.mailboxes[1].receiver: must be unique (same as probes.inbox.mailboxes[0].receiver)',
    ]);
    assert.deepEqual(planProblemsOf({ probes: { inbox: { mailboxes: [{ ...mailbox, imap: { host: 'imap.gmail.com', user: SEED } }] } } }), [
      'probes.inbox.mailboxes[0].imap: must name one of password_env or token_env',
    ]);
  });
});

describe('inbox results at the collector', () => {
  test('placement, latency and the receiver verdicts per receiver and IP', async () => {
    receiver.setPlacement('127.0.0.3', 'spam');
    const results = [await run(via('old'), settings()), await run(via('new'), settings())];
    receiver.setPlacement('127.0.0.3', 'drop');
    results.push(await run(via('new'), settings({ deadlineMs: 500, pollMs: 100 })));
    results.push(await run(via('old'), settings({}, { spamFolders: ['Bulk'] })));
    const c = await startTestCollector(testPlan());
    try {
      const res = await c.push(batchOf(results));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const text = await c.scrape();
      const sample = (name: string, labels: Record<string, string>) => sampleIn(text, name, labels);
      const old = { receiver: 'gmail', via_ip: '127.0.0.2', side: 'old' };
      const neu = { receiver: 'gmail', via_ip: '127.0.0.3', side: 'new' };
      assert.equal(sample('mailprobe_inbox_total', { ...old, result: 'inbox' }), 1);
      assert.equal(sample('mailprobe_inbox_total', { ...old, result: 'failed' }), 1);
      assert.equal(sample('mailprobe_inbox_total', { ...neu, result: 'spam' }), 1);
      assert.equal(sample('mailprobe_inbox_total', { ...neu, result: 'lost' }), 1);
      assert.equal(sample('mailprobe_inbox_duration_seconds_count', old), 1);
      assert.equal(sample('mailprobe_inbox_duration_seconds_count', neu), 1, 'the lost one has no latency');
      assert.equal(sample('mailprobe_inbox_auth', { ...old, method: 'spf', result: 'pass' }), 1);
      assert.equal(sample('mailprobe_inbox_auth', { ...neu, method: 'spf', result: 'fail' }), 1);
      assert.equal(sample('mailprobe_inbox_auth', { ...neu, method: 'dmarc', result: 'pass' }), 1);
      assert.equal(sample('mailprobe_checks_total', { type: 'inbox', result: 'mailbox_missing' }), 1);
    } finally {
      await c.close();
    }
  });
});
