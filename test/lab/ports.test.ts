/**
 * lab/ports.ts, which every peer the lab, the benchmarks and the tests start goes through: a free
 * port can be bound, and waiting for a listener resolves once one accepts, or names the daemon,
 * the address and its log when none does in time.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort, waitListening } from '../../lab/ports.js';

test('freePort gives a port that binds; waitListening waits for the listener, or says who did not listen where', async () => {
  const port = await freePort('127.0.0.1');
  assert.ok(port > 0 && port < 65536, String(port));
  await assert.rejects(
    waitListening('127.0.0.1', port, 150, 'dovecot', async () => 'the log'),
    {
      message: `dovecot did not listen on 127.0.0.1:${port} within 150 ms:\nthe log`,
    },
  );
  const srv = createServer((s) => s.destroy());
  const listening = waitListening('127.0.0.1', port, 5000, 'postfix');
  setTimeout(() => srv.listen(port, '127.0.0.1'), 120);
  await listening;
  await new Promise((r) => srv.close(r));
});
