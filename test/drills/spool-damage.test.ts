/**
 * Drill (issue 15, defect 2): no damage to any single spool record makes the collector apply a
 * result twice. For each record index: a spool of 6 batches delivers 4 of them to a real
 * collector (acknowledged, still in the file because no compaction ran) and keeps 2 pending;
 * that record is damaged (one byte flipped), the spool reopened as the probe does (left-over
 * results sealed again) and drained to the same collector. Every time the collector has applied
 * each distinct result once, and every result the spool still had arrived.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashToken } from '../../collector/plugins/auth.js';
import { envelope, Pusher } from '../../probe/pusher.js';
import { Spool } from '../../probe/spool.js';
import type { AuthResult } from '../../protocol/results.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { captureLogger, tempDir } from '../probe/support.js';

const CASES = 40;
const idOf = (i: number) => `p-case-${i}`;
const token = (i: number) => `token-case-${i}`;

async function drain(dir: string, collector: TestCollector, i: number): Promise<void> {
  const { log } = captureLogger();
  const spool = Spool.open({ dir, maxBytes: 1 << 20, collectors: [collector.url], log });
  // As the probe does at start: results left open (their seal damaged) go out as a new batch.
  spool.seal('resealed-after-reopen', Date.now());
  const pusher = new Pusher({
    spool,
    collectors: [collector.url],
    token: token(i),
    probe: { id: idOf(i), region: 'eu', version: 'drill' },
    retryMinMs: 10,
    retryMaxMs: 50,
    requestTimeoutMs: 2000,
    tokenEnv: 'MAILPROBE_TOKEN',
    log,
  });
  pusher.start();
  try {
    assert.ok(await pusher.drain(10_000), 'the spool drained');
  } finally {
    await pusher.stop();
    spool.close();
  }
}

test('damaging any one record of the spool never makes the collector apply a result twice', async () => {
  const { dir: root, cleanup } = tempDir('mailprobe-drill-damage-');
  const c = await startTestCollector(
    testPlan({ collector: { tokens: Object.fromEntries(Array.from({ length: CASES }, (_, i) => [idOf(i), hashToken(token(i))])) } }),
  );
  try {
    let records = CASES;
    let cases = 0;
    for (let i = 0; i < records; i++) {
      const dir = join(root, `case-${i}`);
      const probe = { id: idOf(i), region: 'eu', version: 'drill' };
      const { log } = captureLogger();
      const spool = Spool.open({ dir, maxBytes: 1 << 20, collectors: [c.url], log });
      let n = 0;
      for (let b = 0; b < 6; b++) {
        spool.appendResults(
          Array.from(
            { length: 4 },
            (): AuthResult => ({ type: 'auth', method: 'dkim', subject: `c${i}-${n++}`, pass: true, ok: true, startedAt: Date.now(), durationSeconds: 0.001 }),
          ),
        );
        spool.seal(`drill-batch-${b}`, Date.now());
      }
      const before = (await c.sample('mailprobe_collector_results_total')) ?? 0;
      for (const b of spool.batches().slice(0, 4)) {
        assert.equal((await c.push(JSON.parse(envelope(probe, b)) as never, { token: token(i) })).status, 200);
        spool.ack(b.id, c.url, true);
      }
      spool.close();
      // Damage record i: one byte in the middle of its JSON.
      const text = readFileSync(join(dir, 'spool.log'), 'utf8').split('\n');
      records = Math.min(CASES, text.length - 1);
      const l = text[i] ?? '';
      const pos = 9 + Math.floor((l.length - 9) / 2);
      text[i] = l.slice(0, pos) + (l[pos] === 'x' ? 'y' : 'x') + l.slice(pos + 1);
      writeFileSync(join(dir, 'spool.log'), text.join('\n'));
      await drain(dir, c, i);
      const total = ((await c.sample('mailprobe_collector_results_total')) ?? 0) - before;
      const distinct = [...(await c.scrape()).matchAll(new RegExp(`^mailprobe_dkim_key_present\\{selector="c${i}-\\d+"\\} `, 'gm'))].length;
      assert.equal(total, distinct, `record ${i} (${l.slice(9, 70)}…) damaged: ${total} results applied, ${distinct} distinct`);
      assert.ok(distinct >= n - 1, `record ${i} damaged: only ${distinct} of ${n} results arrived`);
      cases++;
    }
    assert.ok(cases >= 30, `${cases} records damaged and checked`);
  } finally {
    await c.close();
    cleanup();
  }
});
