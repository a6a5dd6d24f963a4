/**
 * Helpers for the probe runtime tests: a logger that keeps its lines, temp dirs, waiting.
 */
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true or `ms` passes; returns the last value. */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms: number, every = 25): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() >= until) return false;
    await sleep(every);
  }
}
