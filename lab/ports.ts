/**
 * Ports of the peers the lab, the benchmarks and the tests start on loopback: a TCP port free
 * right now (for daemons that cannot bind port 0 and report it), and waiting until a daemon
 * accepts connections on one. One place for both, so every peer starts the same way.
 */
import { connect, createServer } from 'node:net';

/** A TCP port free on `host` right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, host, resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (!addr || typeof addr === 'string') throw new Error(`no free port on ${host}`);
  return addr.port;
}

/**
 * Resolves once `host:port` accepts a TCP connection; after `ms` throws "`what` did not listen on
 * host:port within ms ms", followed by `detail()` (the daemon's log) when given.
 */
export async function waitListening(host: string, port: number, ms: number, what: string, detail?: () => Promise<string>): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${what} did not listen on ${host}:${port} within ${ms} ms${detail ? `:\n${await detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
