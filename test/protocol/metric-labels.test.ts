// The sample operations of real results carry exactly the labels of their catalogue entries
// (protocol/metrics.ts): the compiler checks label sets written as literals, this checks what a
// spread or a variable could slip past it. Every metric the results feed is fed by some result of
// the deploy fixtures (the probes' check types, failed ones included) or of a mail server's log
// follower, and only those.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { resultOps, type SampleOp } from '../../collector/samples.js';
import { METRICS, metricsOf, oneOfLabel } from '../../protocol/metrics.js';
import type { CheckResult } from '../../protocol/results.js';
import { FIXTURE_PROBES, probeResults } from '../deploy/fixtures.js';

const T = 1_800_000_000_000;
/** What a mail server's log follower (mailprobe mta-log) pushes; the fixtures hold the probes' results. */
const MTA_LOG: CheckResult = {
  type: 'mta',
  startedAt: T,
  durationSeconds: 0,
  ok: true,
  ips: [
    {
      ip: '127.0.0.3',
      side: 'new',
      sessions: [{ net: '192.0.2.0/24', count: 3 }],
      messages: [{ net: 'other', count: 2 }],
      lastSessionAt: T - 5000,
      quiet: false,
    },
  ],
  lines: 40,
  unknownLines: 1,
};

const ops: SampleOp[] = [
  ...FIXTURE_PROBES.flatMap((p) => [0, 1, 2].flatMap((round) => probeResults(p, round, T + round * 60_000).flatMap((r) => resultOps(p, r).list()))),
  ...resultOps({ id: 'mx1', region: 'eu' }, MTA_LOG),
];

test('every operation carries exactly the labels of its catalogue entry', () => {
  const wrong = ops.flatMap((op) => {
    const names = [...Object.keys(op.labels), ...(op.op === 'one-of' ? [op.label] : [])].sort();
    const want = [...METRICS[op.metric].labels].sort();
    return names.join() === want.join() ? [] : [`${op.metric}: {${names.join()}}, the catalogue says {${want.join()}}`];
  });
  assert.deepEqual(wrong, []);
});

test('one-of operations are on the one-of gauges, with their label; the others are not', () => {
  for (const op of ops) {
    if (op.op === 'one-of') assert.equal(op.label, oneOfLabel(op.metric), op.metric);
    else assert.equal(oneOfLabel(op.metric), undefined, `${op.metric} is a one-of gauge written with ${op.op}`);
  }
});

test('the results feed the result metrics of the catalogue, all of them', () => {
  assert.deepEqual([...new Set(ops.map((op) => op.metric))].sort(), [...metricsOf('result')].sort());
});
