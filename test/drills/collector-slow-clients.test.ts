/**
 * Drills: slow-drip (slowloris) and oversized requests against a collector process. The server
 * must cut them off (bounded) and keep serving everyone else meanwhile (no stall).
 *
 * The collector here runs with a 6 s request timeout (the product's is 30 s) so the drill fits a
 * test's time; the mechanism is the same.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startCollectorProcess, type CollectorProcess } from '../../bench/lib/bench-processes.js';
import { validBatch } from '../support/drill-requests.js';
import { dripClient, floodClient, rawRequest, type DripClient } from '../support/drill-sockets.js';
import { tokenFor } from '../../bench/lib/plan.js';

const REQUEST_TIMEOUT_MS = 6000;
const SLOW_CLIENTS = 200;
const BODY_LIMIT = 1024 * 1024;

let collector: CollectorProcess;
let port: number;
before(async () => {
  collector = await startCollectorProcess({ probes: ['p-eu'], requestTimeoutMs: REQUEST_TIMEOUT_MS });
  port = Number(new URL(collector.url).port);
});
after(async () => {
  await collector?.stop();
});

const auth = `Bearer ${tokenFor('p-eu')}`;

async function push(): Promise<number> {
  const r = await request(`${collector.url}/v1/results`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify(validBatch()),
  });
  await r.body.dump();
  return r.statusCode;
}

/** Resolves with the value, or rejects after `ms` (a drill that never ends is a failed drill). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

test(`${SLOW_CLIENTS} slow-drip connections: others are served meanwhile, and every slow one is cut off`, async () => {
  const clients: DripClient[] = [];
  try {
    // All at once, so they hold their connections over the same stretch of time.
    const opened = await Promise.all(
      Array.from({ length: SLOW_CLIENTS }, (_, i) => {
        if (i % 2 === 0) {
          // Headers one line at a time.
          let n = 0;
          return dripClient(port, 'POST /v1/results HTTP/1.1\r\nHost: collector\r\n', () => `X-Drip-${n++}: ${'a'.repeat(8)}\r\n`, 250);
        }
        // Complete headers, then the body a few bytes at a time.
        const head = `POST /v1/results HTTP/1.1\r\nHost: collector\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"probe":`;
        return dripClient(port, head, () => ' ', 250);
      }),
    );
    clients.push(...opened);

    // Others are served while all the slow ones hold their connections.
    assert.equal(await push(), 200, 'a normal push succeeds');
    const scrape = await request(`${collector.url}/metrics`);
    const text = await scrape.body.text();
    assert.equal(scrape.statusCode, 200);
    assert.match(text, /mailprobe_collector_batches_total\{result="accepted"\} 1/);
    const servedAt = performance.now();

    // Bounded: the server cuts every one off (408) on its own.
    const ends = await within(Promise.all(clients.map((c) => c.closed)), 60_000, 'slow clients cut off');
    const statuses = new Map<string, number>();
    for (const e of ends) statuses.set(String(e.status), (statuses.get(String(e.status)) ?? 0) + 1);
    // The server answers 408 and closes; a client still dripping may see the close as a reset
    // that discards the 408 before it is read (status null). Either way the server cut it off.
    assert.ok(
      [...statuses.keys()].every((k) => k === '408' || k === 'null') && (statuses.get('408') ?? 0) > 0,
      `every slow client was cut off with 408 or a reset: ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    const firstCut = Math.min(...ends.map((e) => e.at));
    assert.ok(servedAt < firstCut, 'the normal push and scrape were served before any slow client was cut off (not after waiting for them)');
  } finally {
    for (const c of clients) c.stop();
  }
  assert.equal(collector.child.exitCode, null, 'the collector is alive');
  assert.equal(await push(), 200, 'and takes pushes after the drill');
});

test('oversized requests are refused without reading them whole, and others are served', async () => {
  const head = (extra: string) => `POST /v1/results HTTP/1.1\r\nHost: collector\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\n${extra}\r\n`;

  // A Content-Length over the limit: 413 before any body byte is sent.
  assert.equal(await rawRequest(port, head(`Content-Length: ${BODY_LIMIT * 64}\r\n`)), 413);

  // A chunked body without end: 413 once the limit is passed; the client cannot push much more.
  const chunk = Buffer.from(`10000\r\n${' '.repeat(0x10000)}\r\n`);
  const flood = await within(floodClient(port, head('Transfer-Encoding: chunked\r\n'), chunk, 256 * BODY_LIMIT), 60_000, 'chunked flood answered');
  // 413, or a reset that overtook it (the client was still writing when the server closed).
  assert.ok(flood.status === 413 || flood.status === null, `chunked flood answered ${flood.status} after ${flood.sent} bytes`);
  assert.ok(flood.sent < 32 * BODY_LIMIT, `the server stopped the flood after ${(flood.sent / 2 ** 20).toFixed(1)} MiB`);

  // Headers beyond Node's 16 KiB limit.
  assert.equal(await rawRequest(port, head(`X-Big: ${'h'.repeat(64 * 1024)}\r\n`)), 431);

  // Under the body limit but over the schema's 5000 results.
  const tiny = { type: 'auth', startedAt: 0, durationSeconds: 0, ok: true, method: 'dkim', subject: 's', pass: true };
  const many = JSON.stringify({ ...validBatch(), results: Array.from({ length: 5001 }, () => tiny) });
  assert.ok(many.length < BODY_LIMIT);
  const r1 = await request(`${collector.url}/v1/results`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: many });
  assert.equal(r1.statusCode, 400, await r1.body.text());

  // JSON nested half a million levels deep (a recursive parser or validator would overflow).
  const depth = 500_000;
  const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  assert.ok(deep.length < BODY_LIMIT);
  const r2 = await request(`${collector.url}/v1/results`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: deep });
  const t2 = await r2.body.text();
  assert.ok(r2.statusCode >= 400 && r2.statusCode < 500, `deep JSON answered ${r2.statusCode} ${t2.slice(0, 200)}`);

  assert.equal(collector.child.exitCode, null, 'the collector is alive');
  assert.equal(await push(), 200, 'and takes pushes');
});
