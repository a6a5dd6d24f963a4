import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { Spool } from '../../probe/spool.js';
import type { AuthResult } from '../../protocol/results.js';
import { tempDir } from './support.js';

const C = ['http://127.0.0.1:1', 'http://127.0.0.1:2'];
const silent = pino({ level: 'silent' });

type Op = { op: 'append'; n: number } | { op: 'seal'; max: number } | { op: 'ack'; which: number; c: number; ok: boolean } | { op: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('append' as const), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('seal' as const), max: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ op: fc.constant('ack' as const), which: fc.nat(), c: fc.integer({ min: 0, max: 1 }), ok: fc.boolean() }),
  fc.record({ op: fc.constant('reopen' as const) }),
);

test('spool property: after any sequence of writes and a crash that cuts the file anywhere, it opens, and what it holds is what was sealed', () => {
  let counter = 0;
  const result = (): AuthResult => ({
    type: 'auth',
    method: 'dkim',
    subject: `s${counter}`,
    pass: true,
    ok: true,
    startedAt: 1_700_000_000_000,
    durationSeconds: 0,
    detail: `#${counter++}`,
  });
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.double({ min: 0, max: 1, noNaN: true }), (ops, cutAt) => {
      const { dir, cleanup } = tempDir('mailprobe-spool-prop-');
      try {
        let spool = Spool.open({ dir, maxBytes: 1 << 20, collectors: C, log: silent });
        // The model: sealed batches not yet done, in order, with their results; open results.
        const sealed = new Map<string, { details: string[]; done: Set<string> }>();
        // Every batch ever sealed, in seal order, and for a done batch the file size once its last
        // acknowledgement was written: a crash that cuts the file before that point loses the
        // acknowledgement, and the batch must come back (at least once; the collector drops the
        // repeat by its id). Compaction drops done batches, so a later cut cannot bring them back.
        const everSealed = new Map<string, string[]>();
        const doneAt = new Map<string, number>();
        const file = join(dir, 'spool.log');
        let open: string[] = [];
        let seq = 0;
        for (const o of ops) {
          if (o.op === 'append') {
            const rs = Array.from({ length: o.n }, result);
            spool.appendResults(rs);
            open.push(...rs.map((r) => r.detail ?? ''));
          } else if (o.op === 'seal') {
            const id = `batch-${seq++}-prop`;
            const b = spool.seal(id, 0, o.max);
            if (open.length === 0) assert.equal(b, undefined);
            else {
              const take = open.slice(0, o.max);
              open = open.slice(o.max);
              sealed.set(id, { details: take, done: new Set() });
              everSealed.set(id, take);
              assert.deepEqual(
                (JSON.parse(b?.resultsJson ?? '[]') as AuthResult[]).map((r) => r.detail),
                take,
              );
            }
          } else if (o.op === 'ack') {
            const ids = [...sealed.keys()];
            if (ids.length === 0) continue;
            const id = ids[o.which % ids.length] ?? '';
            const c = C[o.c] ?? '';
            spool.ack(id, c, o.ok);
            const m = sealed.get(id);
            m?.done.add(c);
            if (m && m.done.size === C.length) {
              sealed.delete(id);
              doneAt.set(id, statSync(file).size);
            }
          } else {
            spool.close();
            spool = Spool.open({ dir, maxBytes: 1 << 20, collectors: C, log: silent });
          }
          // The live state always equals the model.
          assert.deepEqual(
            spool.batches().map((b) => b.id),
            [...sealed.keys()],
          );
          assert.equal(spool.openCount, open.length);
        }
        spool.close();

        // Crash: the file ends anywhere.
        const size = statSync(file).size;
        const cut = Math.floor(size * cutAt);
        truncateSync(file, cut);
        const after = Spool.open({ dir, maxBytes: 1 << 20, collectors: C, log: silent });
        const ids = [...sealed.keys()];
        const order = [...everSealed.keys()];
        let last = -1;
        for (const b of after.batches()) {
          const m = everSealed.get(b.id);
          assert.ok(m, `${b.id} was never sealed`);
          // A done batch comes back only when the cut took its last acknowledgement.
          if (!sealed.has(b.id)) assert.ok(cut < (doneAt.get(b.id) ?? 0), `${b.id} was done at byte ${doneAt.get(b.id)} and came back after a cut at ${cut}`);
          const i = order.indexOf(b.id);
          assert.ok(i > last, 'in seal order');
          last = i;
          const details = (JSON.parse(b.resultsJson) as AuthResult[]).map((r) => r.detail);
          // Its seal record comes after all its results: a batch is whole or not there.
          assert.deepEqual(details, m);
        }
        if (cutAt === 1)
          assert.deepEqual(
            after.batches().map((b) => b.id),
            ids,
          );
        // It keeps working after the crash.
        after.appendResults([result()]);
        after.seal('batch-after-crash', 0);
        after.close();
        const again = Spool.open({ dir, maxBytes: 1 << 20, collectors: C, log: silent });
        assert.equal(again.batches().at(-1)?.id, 'batch-after-crash');
        again.close();
      } finally {
        cleanup();
      }
    }),
    { numRuns: 60 },
  );
});
