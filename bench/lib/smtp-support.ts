/**
 * Helpers for the smtp and round-trip check tests: a check context and a batch for the collector.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { CheckContext } from '../../probe/check.js';
import type { CheckResult } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';

export function testCtx(over: { signal?: AbortSignal; probeId?: string } = {}): CheckContext {
  return {
    signal: over.signal ?? new AbortController().signal,
    probe: { id: over.probeId ?? 'p-eu', region: 'eu' },
    log: pino({ level: 'silent' }),
    now: () => Date.now(),
    state: new Map(),
    history: { since: () => [] },
  };
}

let seq = 0;
export function batchOf(results: CheckResult[], probeId = 'p-eu'): Batch {
  return { probe: { id: probeId, region: 'eu', version: 'test' }, batch: { id: randomBytes(8).toString('hex'), seq: seq++, createdAt: Date.now() }, results };
}

/** Value of one sample in a text exposition (one scrape, many lookups). */
export function sampleIn(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
