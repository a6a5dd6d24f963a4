/**
 * probe/http-client.ts against a real node:http server on loopback: a reply read whole with its
 * status and headers, a body over the limit refused, a reply cut off before its end refused, and
 * an abort that ends a request the server never answers.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { keepAliveAgents, ReplyTooLargeError, request } from '../../probe/http-client.js';

let server: Server;
let base: string;
before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/echo') res.writeHead(201, { 'retry-after': '7', 'content-type': 'text/plain' }).end(`${req.method} ${body}`);
      else if (req.url === '/big') res.end(Buffer.alloc(2048, 'x'));
      else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('only part');
        setTimeout(() => res.socket?.destroy(), 20);
      }
      // /hang: never answers
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('the status, the headers and the whole body; the same keep-alive connection twice', async () => {
  const agents = keepAliveAgents(5000);
  try {
    const a = await request(`${base}/echo`, { method: 'POST', body: 'hello', agents });
    assert.deepEqual([a.status, a.headers['retry-after'], a.body.toString()], [201, '7', 'POST hello']);
    const b = await request(`${base}/echo`, { method: 'POST', body: Buffer.from('again'), agents });
    assert.equal(b.body.toString(), 'POST again');
    assert.equal(Object.values(agents.http.freeSockets).flat().length, 1, 'one idle connection kept for reuse');
  } finally {
    agents.destroy();
  }
});

test('a body over maxBytes, a reply cut off and an abort are errors', async () => {
  await assert.rejects(request(`${base}/big`, { maxBytes: 1024 }), ReplyTooLargeError);
  assert.equal((await request(`${base}/big`, { maxBytes: 2048 })).body.length, 2048);
  await assert.rejects(request(`${base}/cut`), /aborted|ECONNRESET/);
  const started = performance.now();
  await assert.rejects(request(`${base}/hang`, { signal: AbortSignal.timeout(200) }), { name: 'AbortError' });
  assert.ok(performance.now() - started < 5000);
  await assert.rejects(request('ftp://127.0.0.1/x'), /not an http/);
});
