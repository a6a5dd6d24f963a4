import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { startAuthoritative, type Authoritative } from '../../../lab/dns/authoritative.js';
import { generateDkimKey } from '../../../lab/dns/zone.js';
import { makeLabCerts, type LabCerts } from '../../../lab/mta/certs.js';
import { composeMessage } from '../../../probe/smtp/message.js';
import { SIGNATURE_HEADER, signStamp } from '../../../probe/smtp/signing.js';
import { authenticate, type DKIMSignOptions, type DNSResolver } from 'mailauth';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dnsResolver, fcrdns, reverseName, Sink } from '../../../probe/sink/index.js';
import { receiverAuth } from '../../../probe/sink/receiver-auth.js';
import { peer } from '../../../scripts/peers.mjs';

const SECRET = 'sink-test-secret-0123456789';
const RT = 'mailprobe-rt@company.test';
const FROM = 'mailprobe@company.test';
const exec = promisify(execFile);
const SWAKS = peer('swaks');

let dns: Authoritative;
let certs: LabCerts;
let sink: Sink;
const key = generateDkimKey();

before(async () => {
  // SPF authorises only the old IP; only the old IP has a PTR that confirms.
  dns = await startAuthoritative({
    domain: 'company.test',
    spf: 'old',
    dmarc: 'reject',
    dkimKey: key,
    ptr: { '127.0.0.2': ['mail.company.test'], '127.0.0.4': ['nowhere.company.test'] },
    initial: { ttl: 60, serve: 'old' },
  });
  certs = await makeLabCerts({ mailHost: 'sink.probes.test' });
  sink = await Sink.start({
    host: '127.0.0.1',
    port: 0,
    address: RT,
    secret: SECRET,
    maxSize: 16 * 1024,
    name: 'sink.probes.test',
    tls: certs.mailHost,
    resolver: dnsResolver(dns.address),
  });
});

after(async () => {
  await sink.close();
  await dns.close();
  await certs.cleanup();
});

let n = 0;
function signedMessage(over: { secret?: string; sentAt?: number; probeId?: string; from?: string; body?: string } = {}): {
  text: string;
  messageId: string;
  sentAt: number;
  stamp: string;
} {
  const messageId = `msg${Date.now()}x${n++}`;
  const sentAt = over.sentAt ?? Date.now();
  const body = over.body ?? 'round trip';
  const stamp = signStamp(over.secret ?? SECRET, { probeId: over.probeId ?? 'p-eu', messageId, sentAt }, { from: over.from ?? FROM, to: RT, body });
  const text = composeMessage({ from: FROM, to: RT, id: messageId, subject: `rt ${messageId}`, headers: [`${SIGNATURE_HEADER}: ${stamp}`], body });
  return { text, messageId, sentAt, stamp };
}

/** Delivers like an MTA would: from its own address, optionally DKIM-signed. */
async function deliver(from: string, text: string, opts: { dkim?: boolean; helo?: string } = {}): Promise<{ ok: boolean; response: string }> {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: sink.port,
    localAddress: from,
    name: opts.helo ?? 'mail.company.test',
    tls: { rejectUnauthorized: false },
    logger: false,
    ...(opts.dkim ? { dkim: { domainName: 'company.test', keySelector: 's2026', privateKey: key.privateKey } } : {}),
  });
  try {
    const info = (await t.sendMail({ envelope: { from: FROM, to: [RT] }, raw: text })) as { response: string };
    return { ok: true, response: info.response };
  } catch (e) {
    return { ok: false, response: (e as { response?: string }).response ?? String(e) };
  } finally {
    t.close();
  }
}

async function swaks(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await exec(SWAKS, ['--server', `127.0.0.1:${sink.port}`, '--from', FROM, '--helo', 'swaks.probes.test', ...args], { timeout: 20_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('round-trip sink', () => {
  test('a signed, DKIM-signed delivery from an SPF-authorised IP with FCrDNS passes everything', async () => {
    const m = signedMessage();
    const r = await deliver('127.0.0.2', m.text, { dkim: true });
    assert.equal(r.ok, true, r.response);
    assert.match(r.response, /^250 /);
    const a = await sink.waitFor(m.messageId, Date.now() + 5000);
    assert.ok(a, 'arrived');
    assert.equal(a.deliveringIp, '127.0.0.2');
    assert.equal(a.helo, 'mail.company.test');
    assert.equal(a.mailFrom, FROM);
    assert.equal(a.probeId, 'p-eu');
    assert.equal(a.sentAt, m.sentAt);
    assert.ok(a.arrivedAt >= m.sentAt && a.arrivedAt - m.sentAt < 2000);
    assert.deepEqual(a.verdicts, { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' });
  });

  test('from an IP SPF does not list and without PTR: spf fail, dkim none, dmarc fail, fcrdns fail', async () => {
    const m = signedMessage();
    const r = await deliver('127.0.0.3', m.text);
    assert.equal(r.ok, true, r.response);
    const a = await sink.waitFor(m.messageId, Date.now() + 5000);
    assert.equal(a?.deliveringIp, '127.0.0.3');
    assert.deepEqual(a?.verdicts, { spf: 'fail', dkim: 'none', dmarc: 'fail', fcrdns: 'fail' });
  });

  test('DKIM alone carries DMARC for an IP SPF does not list', async () => {
    const m = signedMessage();
    await deliver('127.0.0.3', m.text, { dkim: true });
    const a = await sink.waitFor(m.messageId, Date.now() + 5000);
    assert.deepEqual(a?.verdicts, { spf: 'fail', dkim: 'pass', dmarc: 'pass', fcrdns: 'fail' });
  });

  test('a PTR whose name does not resolve back is no FCrDNS', async () => {
    assert.equal(reverseName('127.0.0.4'), '4.0.0.127.in-addr.arpa');
    assert.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
    const r = dnsResolver(dns.address);
    assert.equal(await fcrdns('127.0.0.4', r), 'fail');
    assert.equal(await fcrdns('127.0.0.2', r), 'pass');
    assert.equal(await fcrdns('127.0.0.9', r), 'fail');
  });

  test('STARTTLS is offered (swaks) and a signed message over it is taken', async () => {
    const ehlo = await swaks(['--to', RT, '--quit-after', 'EHLO']);
    assert.equal(ehlo.code, 0, ehlo.out);
    assert.match(ehlo.out, /<- {1,2}250-STARTTLS/);
    const m = signedMessage();
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: sink.port,
      localAddress: '127.0.0.2',
      name: 'tls.company.test',
      requireTLS: true,
      tls: { ca: certs.caPem, servername: 'sink.probes.test' },
      logger: false,
    });
    try {
      await t.sendMail({ envelope: { from: FROM, to: [RT] }, raw: m.text });
    } finally {
      t.close();
    }
    const a = await sink.waitFor(m.messageId, Date.now() + 5000);
    assert.equal(a?.tls, true);
    assert.equal(a?.helo, 'tls.company.test');
    assert.equal(a?.verdicts.spf, 'pass');
  });
});

describe('slow verdicts', () => {
  test('a message that arrived before the deadline is not lost while its verdicts take longer', async () => {
    const real = dnsResolver(dns.address);
    // Each lookup 250 ms late: the verdicts need several, well past the 400 ms deadline below.
    const slow = async (name: string, type: string) => {
      await new Promise((r) => setTimeout(r, 250));
      return real(name, type);
    };
    const s2 = await Sink.start({ host: '127.0.0.1', port: 0, address: RT, secret: SECRET, maxSize: 65536, resolver: slow });
    try {
      const m = signedMessage();
      const waiting = s2.waitFor(m.messageId, Date.now() + 400);
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: s2.port,
        localAddress: '127.0.0.2',
        name: 'mail.company.test',
        tls: { rejectUnauthorized: false },
        logger: false,
      });
      try {
        await t.sendMail({ envelope: { from: FROM, to: [RT] }, raw: m.text });
      } finally {
        t.close();
      }
      const t0 = Date.now();
      const a = await waiting;
      assert.ok(a, 'arrived, not lost');
      assert.ok(Date.now() - t0 > 100, 'resolved once the verdicts were in');
      assert.equal(a.verdicts.spf, 'pass');
      assert.ok(a.arrivedAt - m.sentAt < 400, 'the arrival time is the end of DATA, not the end of judging');
    } finally {
      await s2.close();
    }
  });
});

describe('the sink refuses what is not signed probe mail and relays nothing', () => {
  test('unsigned (swaks): 550 5.7.1 at the end of DATA, nothing recorded', async () => {
    const before = { arrivals: sink.arrivals().length, accepted: sink.accepted, rejected: sink.rejected.sink_unsigned };
    const r = await swaks(['--to', RT, '--body', 'hello, no signature']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /<\*\* {1,2}550 5\.7\.1 only signed mailprobe round-trip messages are accepted here/);
    assert.equal(sink.rejected.sink_unsigned, before.rejected + 1);
    assert.equal(sink.accepted, before.accepted);
    assert.equal(sink.arrivals().length, before.arrivals);
  });

  test('forged signature (wrong secret, swaks): 550, nothing recorded', async () => {
    const m = signedMessage({ secret: 'not-the-secret-but-long-enough' });
    const stamp = /X-Mailprobe-Roundtrip: (.*)\r\n/.exec(m.text)![1]!;
    const before = sink.rejected.sink_bad_signature;
    const r = await swaks(['--to', RT, '--add-header', `${SIGNATURE_HEADER}: ${stamp}`]);
    assert.match(r.out, /<\*\* {1,2}550 5\.7\.1 the round-trip signature does not verify/);
    assert.equal(sink.rejected.sink_bad_signature, before + 1);
    assert.equal(await sink.waitFor(m.messageId, Date.now() + 200), undefined);
  });

  test('a tampered stamp (message id changed) does not verify', async () => {
    const m = signedMessage();
    const tampered = m.text.replace(`m=${m.messageId};`, `m=${m.messageId}x;`);
    const r = await deliver('127.0.0.2', tampered);
    assert.equal(r.ok, false);
    assert.match(r.response, /^550 5\.7\.1 the round-trip signature/);
  });

  test('a replayed old stamp is refused as stale', async () => {
    const m = signedMessage({ sentAt: Date.now() - 2 * 86_400_000 });
    const r = await deliver('127.0.0.2', m.text);
    assert.equal(r.ok, false);
    assert.match(r.response, /^550 5\.7\.1 the round-trip message is too old/);
  });

  test('any other recipient is refused at RCPT (no relaying, swaks)', async () => {
    const before = { denied: sink.rejected.sink_relay_denied, accepted: sink.accepted, arrivals: sink.arrivals().length };
    const r = await swaks(['--to', 'victim@elsewhere.test']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /<\*\* {1,2}550 5\.7\.1 relaying denied/);
    assert.doesNotMatch(r.out, /354/, 'never gets to DATA');
    assert.equal(sink.rejected.sink_relay_denied, before.denied + 1);
    assert.equal(sink.accepted, before.accepted);
    assert.equal(sink.arrivals().length, before.arrivals);
  });

  test('a message over the size limit is refused with 552', async () => {
    const m = signedMessage();
    const big = m.text.replace('round trip', 'x'.repeat(20_000));
    const r = await deliver('127.0.0.2', big);
    assert.equal(r.ok, false);
    assert.match(r.response, /^552 /);
    assert.equal(await sink.waitFor(m.messageId, Date.now() + 100), undefined);
  });

  test('waitFor gives up at its deadline and on abort', async () => {
    const t0 = Date.now();
    assert.equal(await sink.waitFor('never-arrives', Date.now() + 150), undefined);
    assert.ok(Date.now() - t0 >= 145);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t1 = Date.now();
    assert.equal(await sink.waitFor('never-arrives-either', Date.now() + 5000, ac.signal), undefined);
    assert.ok(Date.now() - t1 < 1000);
  });

  test("the sink's verdicts are mailauth authenticate()'s on the same messages and records", async () => {
    const resolver = dnsResolver(dns.address) as unknown as DNSResolver;
    const sign = async (text: string, domain = 'company.test') =>
      // mailauth signs with what signatureData lists (its type asks for the fields at the top as well).
      (await dkimSign(text, { signatureData: [{ signingDomain: domain, selector: 's2026', privateKey: key.privateKey }] } as unknown as DKIMSignOptions))
        .signatures + text;
    const plain = signedMessage().text;
    const signed = await sign(plain);
    const otherFrom = composeMessage({ from: 'someone@other.test', to: RT, id: 'other1', subject: 'other', headers: [], body: 'hello' });
    const cases = [
      { what: 'signed, from the SPF-listed IP', raw: signed, ip: '127.0.0.2', sender: FROM, helo: 'mail.company.test' },
      { what: 'unsigned, from an IP SPF does not list', raw: plain, ip: '127.0.0.3', sender: FROM, helo: 'mail.company.test' },
      { what: 'signed, from an IP SPF does not list', raw: signed, ip: '127.0.0.3', sender: FROM, helo: 'mail.company.test' },
      { what: 'body changed after signing', raw: signed.replace('round trip', 'round trap'), ip: '127.0.0.2', sender: FROM, helo: 'mail.company.test' },
      { what: 'a domain without SPF or DMARC', raw: otherFrom, ip: '127.0.0.2', sender: 'someone@other.test', helo: '127.0.0.2' },
      { what: 'signed by another domain than From', raw: await sign(plain, 'other.test'), ip: '127.0.0.3', sender: FROM, helo: 'mail.company.test' },
    ];
    const seen = new Set<string>();
    for (const c of cases) {
      const o = { ip: c.ip, helo: c.helo, sender: c.sender, mta: 'sink.probes.test', resolver };
      const ours = await receiverAuth(Buffer.from(c.raw), o);
      const theirs = await authenticate(Buffer.from(c.raw), { ...o, disableArc: true, disableBimi: true });
      const view = (a: { spf?: unknown; dmarc?: unknown; dkim?: { results?: { status?: { result?: string; comment?: string } }[] } }) => ({
        spf: (a.spf as { status?: { result?: string } } | undefined)?.status?.result ?? 'absent',
        dmarc: (a.dmarc as { status?: { result?: string } } | undefined)?.status?.result ?? 'absent',
        dkim: (a.dkim?.results ?? []).map((r) => `${r.status?.result}${r.status?.comment ? ` (${r.status.comment})` : ''}`),
      });
      assert.deepEqual(view(ours), view(theirs), c.what);
      seen.add(JSON.stringify(view(ours)));
    }
    // The cases cover different verdicts, not one verdict six times.
    assert.ok(seen.size >= 5, [...seen].join('\n'));
  });
});
