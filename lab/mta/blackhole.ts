/**
 * A TCP listener that never accepts, for connect timeouts on loopback without touching the
 * firewall: a child Node process listens (backlog 1) and then blocks its thread, so the kernel
 * completes handshakes only until the accept queue is full and silently drops later SYNs. The
 * queue is filled right after start, so the next connect hangs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';

const CHILD = `
const net = require('node:net');
const s = net.createServer();
s.on('error', (e) => { process.stderr.write(String(e.message)); process.exit(1); });
s.listen({ host: process.argv[1], port: Number(process.argv[2]), backlog: 1 }, () => {
  process.stdout.write(String(s.address().port) + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});`;

export interface Blackhole {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startBlackhole(host: string, port = 0): Promise<Blackhole> {
  const child: ChildProcess = spawn(process.execPath, ['-e', CHILD, host, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const bound = await new Promise<number>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`blackhole on ${host}:${port} exited (${code}): ${err}`)));
  });
  const fillers: Socket[] = [];
  // Fill the accept queue until a connect stays pending.
  for (let i = 0; i < 8; i++) {
    const s = connect({ host, port: bound });
    s.on('error', () => {});
    fillers.push(s);
    const done = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 100);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!done) break;
  }
  return {
    host,
    port: bound,
    async close() {
      for (const s of fillers) s.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
