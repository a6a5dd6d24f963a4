/**
 * Drills against the round-trip sink: 200 slow-drip SMTP sessions do not keep a real delivery
 * waiting, and an oversized message is refused (552) without being kept, the sink alive after.
 *
 * smtp-server cuts only *idle* sessions, so the sink gives every session a lifetime
 * (sessionMaxMs) and caps connections (maxClients): a client dripping bytes is cut off too.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { Sink } from '../../probe/sink/index.js';
import { composeMessage } from '../../probe/smtp/message.js';
import { SIGNATURE_HEADER, signStamp } from '../../probe/smtp/signing.js';
import { dripClient, type DripClient } from '../support/drill-sockets.js';

const SECRET = 'drill-secret-0123456789abcdef';
const RT = 'mailprobe-rt@company.test';
const FROM = 'mailprobe@company.test';
const MAX_SIZE = 64 * 1024;

let sink: Sink;
before(async () => {
  sink = await Sink.start({
    host: '127.0.0.1',
    port: 0,
    address: RT,
    secret: SECRET,
    maxSize: MAX_SIZE,
    name: 'sink.drill.test',
    // The 200 slow clients all come from 127.0.0.1: lift the per-address limit (its own drill
    // is sink-hardening) so this one measures the slow sessions themselves.
    maxPerAddress: 1000,
    // Verdicts are not what this drill is about: every lookup fails fast.
    resolver: async () => {
      throw Object.assign(new Error('no DNS in this drill'), { code: 'ENOTFOUND' });
    },
  });
});
after(async () => {
  await sink?.close();
});

/** What a server says to a new connection before it closes it (or within 3 s). */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(done, 3000);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', done);
  });
}

let n = 0;
function signed(bodyBytes = 100): string {
  const messageId = `drill${Date.now()}x${n++}`;
  const body = 'x'.repeat(bodyBytes);
  const stamp = signStamp(SECRET, { probeId: 'p-eu', messageId, sentAt: Date.now() }, { from: FROM, to: RT, body });
  return composeMessage({ from: FROM, to: RT, id: messageId, subject: `rt ${messageId}`, headers: [`${SIGNATURE_HEADER}: ${stamp}`], body });
}

async function deliver(text: string): Promise<{ ok: boolean; response: string }> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: sink.port, name: 'mail.company.test', ignoreTLS: true, logger: false });
  try {
    const info = (await t.sendMail({ envelope: { from: FROM, to: [RT] }, raw: text })) as { response: string };
    return { ok: true, response: info.response };
  } catch (e) {
    return { ok: false, response: (e as { response?: string }).response ?? String(e) };
  } finally {
    t.close();
  }
}

test('200 slow-drip SMTP sessions: a real delivery is taken meanwhile', async () => {
  const clients: DripClient[] = [];
  try {
    // Opened all at once: smtp-server holds each greeting back 100 ms (early-talker check), which
    // one after the other made 20 s of waiting.
    const opening = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0
        ? // A command line that never ends.
          dripClient(sink.port, 'EHLO ', () => 'a', 250, { afterGreeting: true })
        : // A message body a byte at a time.
          dripClient(sink.port, `EHLO slow.drill.test\r\nMAIL FROM:<${FROM}>\r\nRCPT TO:<${RT}>\r\nDATA\r\n`, () => 'x', 250, { afterGreeting: true }),
    );
    for (const r of await Promise.allSettled(opening)) if (r.status === 'fulfilled') clients.push(r.value);
    assert.equal(clients.length, 200, 'every slow session was opened');
    const before = sink.accepted;
    const r = await deliver(signed());
    assert.equal(r.ok, true, r.response);
    assert.match(r.response, /^250 /);
    assert.equal(sink.accepted, before + 1);
    assert.equal(clients.filter((c) => c.isOpen()).length, 200, 'the delivery did not wait for the slow sessions to end');
  } finally {
    for (const c of clients) c.stop();
  }
});

test('an oversized message is refused with 552 and not kept; the sink takes the next one', async () => {
  const tooBig0 = sink.rejected.sink_too_big;
  const big = await deliver(signed(MAX_SIZE * 8));
  assert.equal(big.ok, false);
  assert.match(big.response, /^552/);
  assert.equal(sink.rejected.sink_too_big, tooBig0 + 1);
  const ok = await deliver(signed());
  assert.equal(ok.ok, true, ok.response);
});

test('slow-drip sessions are cut off at the session lifetime; connections past maxClients are turned away', async () => {
  const short = await Sink.start({
    host: '127.0.0.1',
    port: 0,
    address: RT,
    secret: SECRET,
    maxSize: MAX_SIZE,
    sessionMaxMs: 4000,
    maxClients: 20,
    maxPerAddress: 1000,
  });
  const clients: DripClient[] = [];
  try {
    // A byte every 100 ms: never idle, so only the lifetime can end it.
    clients.push(...(await Promise.all(Array.from({ length: 20 }, () => dripClient(short.port, 'EHLO ', () => 'a', 100, { afterGreeting: true })))));
    const extra = await greeting(short.port);
    assert.match(extra, /^421 /, 'the 21st connection is turned away');
    const until = Date.now() + 15_000;
    while (clients.some((c) => c.isOpen()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.equal(clients.filter((c) => c.isOpen()).length, 0, 'every drip-fed session was closed');
  } finally {
    for (const c of clients) c.stop();
    await short.close();
  }
});
