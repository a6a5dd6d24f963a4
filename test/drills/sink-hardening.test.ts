/**
 * Drills from the attack on the round-trip sink (issue 15, defects 6 and 7), against a real sink
 * on loopback delivered to with nodemailer and raw sockets:
 *   - a captured stamp moved into another message (other body or envelope sender), delivered
 *     first from another IP with another HELO, is refused; the genuine delivery is recorded;
 *   - a message delivered again (a replay, from anywhere) is refused with 550;
 *   - 500 idle connections from one address do not turn away a delivery from another address,
 *     and an idle session is closed well before the session lifetime.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { Sink } from '../../probe/sink/index.js';
import { composeMessage } from '../../probe/smtp/message.js';
import { SIGNATURE_HEADER, signStamp } from '../../probe/smtp/signing.js';

const SECRET = 'drill-secret-0123456789abcdef';
const RT = 'mailprobe-rt@company.test';
const FROM = 'mailprobe@company.test';
const ATTACKER = '127.0.0.9';

let sink: Sink;
before(async () => {
  sink = await Sink.start({
    host: '127.0.0.1',
    port: 0,
    address: RT,
    secret: SECRET,
    maxSize: 64 * 1024,
    name: 'sink.drill.test',
    // Verdicts are not what this drill is about: every lookup fails fast.
    resolver: async () => {
      throw Object.assign(new Error('no DNS in this drill'), { code: 'ENOTFOUND' });
    },
  });
});
after(async () => {
  await sink?.close();
});

let n = 0;
function message(
  body: string,
  stampFor: { body: string; from: string } = { body, from: FROM },
  id = `hard${Date.now()}x${n++}`,
): { id: string; text: string; stamp: string } {
  const stamp = signStamp(SECRET, { probeId: 'p-eu', messageId: id, sentAt: Date.now() }, { from: stampFor.from, to: RT, body: stampFor.body });
  return { id, stamp, text: composeMessage({ from: FROM, to: RT, id, subject: `rt ${id}`, headers: [`${SIGNATURE_HEADER}: ${stamp}`], body }) };
}

async function deliver(
  text: string,
  o: { from?: string; localAddress?: string; helo?: string; starttls?: boolean } = {},
): Promise<{ ok: boolean; response: string }> {
  const tls = o.starttls ? { requireTLS: true, tls: { rejectUnauthorized: false } } : { ignoreTLS: true };
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: sink.port,
    name: o.helo ?? 'mail.company.test',
    logger: false,
    ...tls,
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
  });
  try {
    const info = (await t.sendMail({ envelope: { from: o.from ?? FROM, to: [RT] }, raw: text })) as { response: string };
    return { ok: true, response: info.response };
  } catch (e) {
    return { ok: false, response: (e as { response?: string }).response ?? String(e) };
  } finally {
    t.close();
  }
}

test('a transplanted stamp (other body, or other envelope sender) from another IP and HELO first is refused; the genuine delivery is recorded', async () => {
  const genuine = message('Round-trip test message via 127.0.0.2. Please ignore.');
  const bad0 = sink.rejected.sink_bad_signature;
  // The captured header in a message of the attacker's own.
  const otherBody = composeMessage({
    from: FROM,
    to: RT,
    id: genuine.id,
    subject: 'x',
    headers: [`${SIGNATURE_HEADER}: ${genuine.stamp}`],
    body: 'attacker text',
  });
  let r = await deliver(otherBody, { localAddress: ATTACKER, helo: 'evil.drill.test' });
  assert.equal(r.ok, false);
  assert.match(r.response, /^550 5\.7\.1 the round-trip signature does not verify/);
  // The whole captured message, under another envelope sender.
  r = await deliver(genuine.text, { localAddress: ATTACKER, helo: 'evil.drill.test', from: 'attacker@evil.drill.test' });
  assert.equal(r.ok, false);
  assert.match(r.response, /^550 5\.7\.1 the round-trip signature does not verify/);
  assert.equal(sink.rejected.sink_bad_signature, bad0 + 2);

  r = await deliver(genuine.text, { localAddress: '127.0.0.2' });
  assert.equal(r.ok, true, r.response);
  const a = await sink.waitFor(genuine.id, Date.now() + 5000);
  assert.equal(a?.deliveringIp, '127.0.0.2');
  assert.equal(a?.helo, 'mail.company.test');
  assert.equal(a?.mailFrom, FROM);
  // A stamp bound to a body the relay only re-wrapped (CRLF, trailing blanks) still verifies.
  const rewrapped = message('line one\r\nline two', { body: 'line one  \nline two\n\n', from: FROM.toUpperCase() });
  assert.equal((await deliver(rewrapped.text, { localAddress: '127.0.0.2' })).ok, true);
});

test('a message delivered again is refused with 550 (replay), from any address; the first arrival stands', async () => {
  const m = message('replay me');
  const first = await deliver(m.text, { localAddress: '127.0.0.2' });
  assert.equal(first.ok, true, first.response);
  const replay0 = sink.rejected.sink_replay;
  for (const from of ['127.0.0.2', ATTACKER]) {
    const again = await deliver(m.text, { localAddress: from, helo: 'evil.drill.test' });
    assert.equal(again.ok, false);
    assert.match(again.response, /^550 5\.7\.1 this round-trip message id was delivered before/);
  }
  assert.equal(sink.rejected.sink_replay, replay0 + 2);
  assert.equal((await sink.waitFor(m.id, Date.now() + 5000))?.deliveringIp, '127.0.0.2');
});

/** Opens a connection from `localAddress`; resolves with its first reply line (or '' if none in 3 s). */
function idle(localAddress: string, port: number): Promise<{ socket: Socket; first: string }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let text = '';
    const done = () => {
      clearTimeout(timer);
      resolve({ socket, first: text.split('\r\n')[0] ?? '' });
    };
    const timer = setTimeout(done, 3000);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n')) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

test('500 idle connections from one address: a delivery from another address still succeeds; the attacker holds at most maxPerAddress', async () => {
  const held = await Promise.all(Array.from({ length: 500 }, () => idle(ATTACKER, sink.port)));
  try {
    const greeted = held.filter((h) => h.first.startsWith('220 ')).length;
    const refused = held.filter((h) => h.first.startsWith('421 ')).length;
    assert.ok(greeted <= 20, `${greeted} sessions for one address`);
    assert.equal(greeted + refused, 500, 'every connection got an answer');
    const before = sink.accepted;
    const r = await deliver(message('through the crowd').text, { localAddress: '127.0.0.2' });
    assert.equal(r.ok, true, r.response);
    assert.equal(sink.accepted, before + 1);
  } finally {
    for (const h of held) h.socket.destroy();
  }
});

test('sessions that ended after STARTTLS no longer count against their address (more than maxPerAddress relays in a row all land)', async () => {
  // smtp-server strips the raw socket's listeners at STARTTLS; a per-address count kept by
  // 'close' events never went down for TLS sessions, and a relaying MTA was refused after 20.
  const before = sink.accepted;
  for (let i = 0; i < 25; i++) {
    const r = await deliver(message(`relay ${i}`).text, { localAddress: '127.0.0.5', starttls: true });
    assert.equal(r.ok, true, `delivery ${i + 1}: ${r.response}`);
  }
  assert.equal(sink.accepted, before + 25);
});

test('an idle session is closed after the idle timeout, long before the session lifetime', async () => {
  const short = await Sink.start({ host: '127.0.0.1', port: 0, address: RT, secret: SECRET, maxSize: 1024, idleTimeoutMs: 1000, sessionMaxMs: 300_000 });
  try {
    const { socket, first } = await idle('127.0.0.1', short.port);
    assert.match(first, /^220 /);
    const t0 = performance.now();
    const closedAfter = await new Promise<number>((resolve) => {
      socket.once('close', () => resolve(performance.now() - t0));
      setTimeout(() => resolve(Number.POSITIVE_INFINITY), 10_000).unref();
    });
    assert.ok(closedAfter < 8000, `idle session closed after ${Math.round(closedAfter)} ms`);
  } finally {
    await short.close();
  }
});
