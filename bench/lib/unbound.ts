/**
 * A real unbound (Debian package unbound, found by scripts/peers.mjs) as a caching resolver in front of the
 * lab's authoritative server: stub zones pointing at the lab server's port, no DNSSEC
 * (iterator only), no daemonizing, no chroot, on a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverClient } from '../../probe/dns/client.js';
import { peer } from '../../scripts/peers.mjs';

export interface Unbound {
  address: string;
  port: number;
  log: () => string;
  close(): Promise<void>;
}

/** A port free for both UDP and TCP on the host right now. */
async function freePort(host: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((r) => udp.bind(0, host, () => r(udp.address().port)));
    const tcpOk = await new Promise<boolean>((r) => {
      const s = createServer();
      s.once('error', () => r(false));
      s.listen(port, host, () => s.close(() => r(true)));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpOk) return port;
  }
  throw new Error('no free port');
}

export async function startUnbound(o: { upstream: { host: string; port: number }; zones: string[]; host?: string; probeName: string }): Promise<Unbound> {
  const host = o.host ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-unbound-'));
  const port = await freePort(host);
  const conf = join(dir, 'unbound.conf');
  const stubs = o.zones.map((z) => `stub-zone:\n  name: "${z}."\n  stub-addr: ${o.upstream.host}@${o.upstream.port}\n`).join('');
  writeFileSync(
    conf,
    `server:
  interface: ${host}
  port: ${port}
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  do-ip6: no
  do-not-query-localhost: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  cache-min-ttl: 0
  prefetch: no
  serve-expired: no
  qname-minimisation: no
  local-zone: "test." nodefault
  local-zone: "127.in-addr.arpa." nodefault
${stubs}`,
  );
  let log = '';
  const child: ChildProcess = spawn(peer('unbound'), ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when it answers a query for the stub zone.
  const c = serverClient({ host, port }, 'unbound', { timeoutMs: 300 });
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`unbound exited (${child.exitCode}): ${log}`);
    }
    try {
      const r = await c.query(o.probeName, 'SOA');
      if (r.rcode === 0) break;
    } catch {
      // not up yet
    }
    if (Date.now() > until) {
      await close();
      throw new Error(`unbound did not answer within 10 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { address: `${host}:${port}`, port, log: () => log, close };
}
