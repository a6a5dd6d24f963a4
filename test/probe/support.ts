/**
 * Helpers for the probe runtime tests: a logger that keeps its lines, temp dirs, waiting.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
  code?: string;
  [k: string]: unknown;
}

export function captureLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

export function tempDir(prefix = 'mailprobe-probe-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls `fn` until it returns true or `ms` passes; returns the last value. */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms: number, every = 25): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() >= until) return false;
    await sleep(every);
  }
}

/**
 * How late this process's own timers fire while a timing test runs: a 10 ms interval timer
 * records each tick's lateness. On a busy machine every timer and socket read of the process
 * is late by about as much, so a test allows `base + stop()` (the worst lateness) or
 * `base + quantile(0.9)` instead of a fixed bound that only holds when the machine is quiet;
 * on a quiet machine the bound stays tight.
 */
export function timerLag(): { stop(): number; quantile(q: number): number } {
  const lags: number[] = [];
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 10));
    last = now;
  }, 10);
  return {
    stop: () => {
      clearInterval(t);
      return Math.max(0, ...lags);
    },
    quantile: (q) => {
      const sorted = [...lags].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1:<random port> in front of a real collector, to take it "down" and
 * back without losing its state: `refuse` resets every connection (like a stopped service),
 * `up` forwards (optionally delaying each chunk towards the collector), `lose-replies` forwards
 * requests but cuts the connection instead of passing the collector's answer back.
 */
export type ProxyMode = 'up' | 'refuse' | 'lose-replies';

export interface Proxy {
  url: string;
  mode: ProxyMode;
  setMode(m: ProxyMode): void;
  /** Requests forwarded to the collector whose answer has not come back yet. */
  pending(): number;
  close(): Promise<void>;
}

export async function startProxy(targetUrl: string, opts: { delayMs?: number; mode?: ProxyMode } = {}): Promise<Proxy> {
  const { createServer, connect } = await import('node:net');
  const target = new URL(targetUrl);
  const sockets = new Set<import('node:net').Socket>();
  const track = (s: import('node:net').Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  let pending = 0;
  const proxy: Proxy = {
    url: '',
    mode: opts.mode ?? 'up',
    setMode(m) {
      proxy.mode = m;
      for (const s of sockets) s.destroy();
    },
    pending: () => pending,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((client) => {
    track(client);
    if (proxy.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const up = connect(Number(target.port), target.hostname);
    track(up);
    const delay = opts.delayMs ?? 0;
    client.on('data', (d) => (delay > 0 ? setTimeout(() => up.writable && up.write(d), delay) : up.write(d)));
    const lose = proxy.mode === 'lose-replies';
    let waiting = false;
    const settle = () => {
      if (waiting) pending--;
      waiting = false;
    };
    client.on('data', () => {
      if (!waiting) pending++;
      waiting = true;
    });
    up.on('data', (d) => {
      settle();
      if (lose) client.destroy();
      else if (client.writable) client.write(d);
    });
    up.on('close', settle);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('proxy did not bind');
  proxy.url = `http://127.0.0.1:${addr.port}`;
  return proxy;
}
