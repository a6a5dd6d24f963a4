/**
 * The lab MTAs on their own: relaying round-trip mail to the sink from their own address,
 * DKIM-signed; faults set and cleared at run time; and a real probe runtime running the smtp and
 * roundtrip checks against them, pushing to a real collector.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { startAuthoritative, type Authoritative } from '../../lab/dns/authoritative.js';
import { generateDkimKey } from '../../lab/dns/zone.js';
import { startMtas, type LabMtas } from '../../lab/mta/index.js';
import { createProbe } from '../../probe/runtime.js';
import { dnsResolver, Sink } from '../../probe/sink/index.js';
import { closeSharedSinks } from '../../probe/sink/shared.js';
import { composeMessage } from '../../probe/smtp/message.js';
import { SIGNATURE_HEADER, signStamp } from '../../probe/smtp/signing.js';
import { startTestCollector } from '../support/collector.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { sampleIn } from '../../bench/lib/smtp-support.js';
import { captureLogger, tempDir } from '../probe/support.js';

const MAIL_HOST = 'mail.company.test';
const RT = 'mailprobe-rt@company.test';
const FROM = 'mailprobe@company.test';
const SECRET = 'lab-mta-test-secret-0123456789';
const SECRET_ENV = 'MAILPROBE_TEST_LAB_SECRET';
process.env[SECRET_ENV] = SECRET;

let dns: Authoritative;
let mtas: LabMtas;
const key = generateDkimKey();

before(async () => {
  dns = await startAuthoritative({
    domain: 'company.test',
    mailHost: MAIL_HOST,
    spf: 'both',
    dmarc: 'reject',
    dkimKey: key,
    initial: { ttl: 60, serve: 'both' },
  });
  // Certificates made by startMtas itself (openssl into a temp dir it removes on close).
  mtas = await startMtas({
    mailHost: MAIL_HOST,
    domain: 'company.test',
    relay: [RT],
    dkim: { new: { domainName: 'company.test', keySelector: 's2026', privateKey: key.privateKey } },
  });
});

after(async () => {
  await mtas.close();
  await closeSharedSinks();
  await dns.close();
});

async function send(side: 'old' | 'new', to: string, text: string): Promise<string> {
  const t = nodemailer.createTransport({ host: mtas[side].ip, port: mtas[side].port, tls: { rejectUnauthorized: false }, logger: false });
  try {
    return ((await t.sendMail({ envelope: { from: FROM, to: [to] }, raw: text })) as { response: string }).response;
  } finally {
    t.close();
  }
}

function signed(): { id: string; text: string } {
  const id = `lab${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  const stamp = signStamp(SECRET, { probeId: 'p-lab', messageId: id, sentAt: Date.now() }, { from: FROM, to: RT, body: 'lab' });
  return { id, text: composeMessage({ from: FROM, to: RT, id, subject: 'lab', headers: [`${SIGNATURE_HEADER}: ${stamp}`], body: 'lab' }) };
}

describe('lab MTAs', () => {
  test('listen on 127.0.0.2 and 127.0.0.3 with ports picked at start', () => {
    assert.equal(mtas.old.ip, '127.0.0.2');
    assert.equal(mtas.new.ip, '127.0.0.3');
    assert.ok(mtas.old.port > 0 && mtas.new.port > 0);
    assert.match(mtas.certs.caPem, /BEGIN CERTIFICATE/);
  });

  test('round-trip mail is relayed to the sink from each MTA own address; new signs with DKIM', async () => {
    const sink = await Sink.start({ host: '127.0.0.1', port: 0, address: RT, secret: SECRET, maxSize: 65536, resolver: dnsResolver(dns.address) });
    try {
      mtas.setSink({ host: sink.host, port: sink.port });
      const a = signed();
      const b = signed();
      assert.match(await send('old', RT, a.text), /^250 /);
      assert.match(await send('new', RT, b.text), /^250 /);
      const [ra, rb] = await Promise.all([sink.waitFor(a.id, Date.now() + 5000), sink.waitFor(b.id, Date.now() + 5000)]);
      assert.equal(ra?.deliveringIp, '127.0.0.2');
      assert.equal(rb?.deliveringIp, '127.0.0.3');
      assert.equal(ra?.helo, MAIL_HOST);
      assert.deepEqual(ra?.verdicts, { spf: 'pass', dkim: 'none', dmarc: 'pass', fcrdns: 'pass' });
      assert.deepEqual(rb?.verdicts, { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' });
      await mtas.relaysSettled();
      assert.equal(mtas.old.relayed.at(-1)?.ok, true);
      // Mail for other local addresses is kept, not relayed.
      const before = mtas.old.relayed.length;
      await send('old', 'postmaster@company.test', a.text);
      await mtas.relaysSettled();
      assert.equal(mtas.old.relayed.length, before);
      assert.deepEqual(mtas.old.received.at(-1)?.to, ['postmaster@company.test']);
    } finally {
      mtas.setSink(undefined);
      await sink.close();
    }
  });

  test('a relay the sink refuses is recorded as failed', async () => {
    const sink = await Sink.start({
      host: '127.0.0.1',
      port: 0,
      address: RT,
      secret: 'another-secret-0123456789',
      maxSize: 65536,
      resolver: dnsResolver(dns.address),
    });
    try {
      mtas.setSink({ host: sink.host, port: sink.port });
      await send('new', RT, signed().text);
      await mtas.relaysSettled();
      const last = mtas.new.relayed.at(-1);
      assert.equal(last?.ok, false);
      assert.match(last?.response ?? '', /^550 5\.7\.1 the round-trip signature does not verify/);
    } finally {
      mtas.setSink(undefined);
      await sink.close();
    }
  });

  test('faults are set and cleared at run time', async () => {
    await mtas.setFault('old', { kind: 'perm-fail', at: 'rcpt', code: 550, message: '5.1.1 No such user' });
    await assert.rejects(send('old', 'postmaster@company.test', signed().text), (e: Error & { response?: string }) =>
      /^550 5\.1\.1 No such user/.test(e.response ?? ''),
    );
    await send('new', 'postmaster@company.test', signed().text);
    await mtas.setFault('old', { kind: 'refuse' });
    await assert.rejects(send('old', 'postmaster@company.test', signed().text), /ECONNREFUSED/);
    await mtas.setFault('old', { kind: 'blackhole' });
    await mtas.setFault('old', null);
    assert.match(await send('old', 'postmaster@company.test', signed().text), /^250 /);
  });

  test('temp-fail every 2: every other RCPT of the same sender and recipient gets 451, the first first', async () => {
    await mtas.setFault('new', { kind: 'temp-fail', at: 'rcpt', every: 2 });
    const outcome = async (to: string) => {
      try {
        return (await send('new', to, signed().text)).slice(0, 3);
      } catch (e) {
        return ((e as { response?: string }).response ?? String(e)).slice(0, 3);
      }
    };
    try {
      const got: string[] = [];
      for (const to of ['postmaster@company.test', 'postmaster@company.test', 'abuse@company.test', 'postmaster@company.test', 'abuse@company.test'])
        got.push(await outcome(to));
      assert.deepEqual(got, ['451', '250', '451', '451', '250']);
    } finally {
      await mtas.setFault('new', null);
    }
    assert.equal(await outcome('postmaster@company.test'), '250');
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('a probe run against the lab', () => {
  test('produces the SMTP and round-trip metrics for both destination IPs', async () => {
    const c = await startTestCollector();
    const { dir, cleanup } = tempDir();
    const sinkPort = await freePort();
    mtas.setSink({ host: '127.0.0.1', port: sinkPort });
    const plan = testPlan({
      cutover: {
        servers: [
          { ip: '127.0.0.2', side: 'old', name: 'provider-a', port: mtas.old.port },
          { ip: '127.0.0.3', side: 'new', name: 'provider-b', port: mtas.new.port },
        ],
      },
      probes: {
        smtp: { ca_file: `${mtas.certs.dir}/ca.crt`, helo: 'probe.probes.test' },
        roundtrip: { to: RT, from: FROM, secret_env: SECRET_ENV, deadline: '5s', sink: { listen: `127.0.0.1:${sinkPort}`, resolver: dns.address } },
        push: { collectors: [c.url], batch_max_age: '200ms' },
      },
    });
    const probe = createProbe({
      plan,
      id: 'p-eu',
      region: 'eu',
      token: tokenFor('p-eu'),
      checks: ['smtp', 'roundtrip'],
      spoolDir: dir,
      logger: captureLogger().log,
      random: () => 0,
    });
    try {
      await probe.start();
      const until = Date.now() + 20_000;
      let text = '';
      const sample = (name: string, labels: Record<string, string>) => sampleIn(text, name, labels);
      const want = async () => {
        text = await c.scrape();
        return (
          sample('mailprobe_roundtrip_total', { via_ip: '127.0.0.2', result: 'delivered' }) === 1 &&
          sample('mailprobe_roundtrip_total', { via_ip: '127.0.0.3', result: 'delivered' }) === 1 &&
          sample('mailprobe_smtp_checks_total', { ip: '127.0.0.3', result: 'success' }) === 1 &&
          sample('mailprobe_smtp_checks_total', { ip: '127.0.0.2', result: 'success' }) === 1
        );
      };
      while (!(await want()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.ok(
        await want(),
        text
          .split('\n')
          .filter((l) => /smtp|roundtrip/.test(l) && !l.startsWith('#'))
          .join('\n'),
      );
      for (const [ip, side] of [
        ['127.0.0.2', 'old'],
        ['127.0.0.3', 'new'],
      ] as const) {
        assert.equal(sample('mailprobe_smtp_up', { ip, side }), 1);
        for (const phase of ['connect', 'banner', 'ehlo', 'starttls', 'mail', 'rcpt', 'quit']) {
          assert.equal(sample('mailprobe_smtp_duration_seconds_count', { ip, side, phase }), 1, `${ip} ${phase}`);
        }
        assert.equal(sample('mailprobe_tls_cert_valid', { ip, side }), 1);
        assert.equal(sample('mailprobe_roundtrip_duration_seconds_count', { via_ip: ip, side }), 1);
        assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: ip, method: 'spf', result: 'pass' }), 1);
        assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: ip, method: 'fcrdns', result: 'pass' }), 1);
      }
      assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: '127.0.0.3', method: 'dkim', result: 'pass' }), 1);
      assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: '127.0.0.2', method: 'dkim', result: 'none' }), 1);
    } finally {
      await probe.stop({ graceMs: 2000, flushMs: 1000 });
      mtas.setSink(undefined);
      await c.close();
      cleanup();
    }
  });
});
