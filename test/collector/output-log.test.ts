/**
 * The collector's log about its outputs, against a real HTTP receiver on loopback: at start one
 * line per output with where it writes (remote-write URL, replica, job, queue bound); a warning
 * when the receiver has accepted no request within the (injected, shortened) minute while it
 * refuses, none while there is nothing to send, and a line when it accepts again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildCollector } from '../../collector/app.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { batchOf, mixedResults } from '../support/results.js';

interface Line {
  level: number;
  msg: string;
  output?: string;
  [k: string]: unknown;
}

test('the collector says where each output writes and warns while the remote-write receiver refuses', { timeout: 30_000 }, async () => {
  let status = 503;
  let requests = 0;
  const receiver: Server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      res.statusCode = status;
      res.end(status === 204 ? '' : 'receiver refuses: maintenance');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  assert.ok(addr && typeof addr === 'object');
  const url = `http://127.0.0.1:${addr.port}/api/v1/write`;

  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const plan = testPlan({
    collector: { remote_write: { url, replica: 'replica-7', queue_max_samples: 12345, flush_interval: '100ms', retry_min: '50ms', retry_max: '200ms' } },
  });
  const c = await buildCollector({ plan, registry: new Registry(), logger, remoteWriteWarnAfterMs: 1000 });
  await c.app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const outputs = lines.filter((l) => l.output !== undefined && l.level === 30);
    const rw = outputs.find((l) => l.output === 'remote-write');
    assert.deepEqual(rw && { url: rw.url, replica: rw.replica, job: rw.job, queueMaxSamples: rw.queueMaxSamples }, {
      url,
      replica: 'replica-7',
      job: 'mailprobe-collector',
      queueMaxSamples: 12345,
    });
    assert.match(
      rw?.msg ?? '',
      new RegExp(`remote write to ${url.replace(/[/.]/g, '\\$&')} as job="mailprobe-collector", instance="replica-7" \\(queue 12345 samples\\)`),
    );
    assert.deepEqual(
      outputs.map((l) => [l.output, l.path ?? l.url, l.results]),
      [
        ['metrics', '/metrics', true],
        ['remote-write', url, undefined],
        ['status', '/', undefined],
      ],
    );

    // Nothing to send yet: no warning, however long the receiver has not been asked.
    await sleep(1600);
    const warnings = () => lines.filter((l) => l.level === 40 && l.output === 'remote-write' && /has not accepted/.test(l.msg));
    assert.equal(requests, 0);
    assert.deepEqual(warnings(), []);

    // A probe pushes; the receiver refuses every request (503, retried): one warning after the minute.
    const port = (c.app.server.address() as { port: number }).port;
    // Samples wait from the moment the collector takes the push, which may be well before its
    // answer reaches us on a loaded machine: the minute counts from before the request.
    const sent = Date.now();
    const r = await fetch(`http://127.0.0.1:${port}/v1/results`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor('p-eu')}` },
      body: JSON.stringify(batchOf(mixedResults(Date.now() - 1000), { id: 'p-eu', region: 'eu' })),
    });
    assert.equal(r.status, 200);
    const t0 = Date.now();
    while (warnings().length === 0 && Date.now() - t0 < 10_000) await sleep(100);
    const w = warnings();
    assert.equal(w.length, 1, 'one warning');
    assert.ok(requests > 0, 'the receiver was asked');
    assert.equal(w[0]?.url, url);
    assert.ok(Number(w[0]?.retried) > 0, `retried requests counted: ${JSON.stringify(w[0])}`);
    assert.equal(typeof w[0]?.queued, 'number');
    assert.ok(Number(w[0]?.secondsWithoutAccept) >= 1);
    assert.ok(Number(w[0]?.time) - sent >= 1000, `not before the (shortened) minute: ${Number(w[0]?.time) - sent} ms after the push`);
    await sleep(1500);
    assert.equal(warnings().length, 1, 'warned once, not on every look');

    // The receiver accepts again: one line says so, no further warning.
    status = 204;
    const t1 = Date.now();
    const again = () => lines.filter((l) => l.level === 30 && /accepts requests again/.test(l.msg));
    while (again().length === 0 && Date.now() - t1 < 10_000) await sleep(100);
    assert.equal(again().length, 1);
    assert.equal(again()[0]?.url, url);
    assert.equal(warnings().length, 1);
  } finally {
    await c.app.close();
    await new Promise((r) => receiver.close(r));
  }
});

test('without remote write the collector logs only its /metrics and status outputs', async () => {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const c = await buildCollector({ plan: testPlan(), registry: new Registry(), logger });
  try {
    assert.deepEqual(
      lines.filter((l) => l.output !== undefined).map((l) => l.output),
      ['metrics', 'status'],
    );
  } finally {
    await c.app.close();
  }
});
