/**
 * The store finds a series by a short key of label-value ids (collector/store/series-store.ts,
 * `LabelIds`): the keys must name exactly one label set each (also past the ids that take two
 * code units), an id must be freed with the last series that holds it (so the table does not grow
 * with values that are gone), and a one-of gauge's group must keep its key across switches.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SampleOps, type SampleOp } from '../../collector/samples.js';
import { SeriesStore } from '../../collector/store/series-store.js';

const TS = Date.parse('2026-03-01T10:00:00Z');
const ttl = (probe: string, resolver: string, value: number): SampleOp => ({
  op: 'set',
  metric: 'dnsTtl',
  labels: { region: 'eu', probe, resolver, resolver_name: resolver, name: 'mail.company.test', type: 'A' },
  value,
  ts: TS,
});

test('keys name one label set each, past 65 536 interned values; the ids go with the last series holding them', () => {
  const store = new SeriesStore();
  const n = 70_000;
  // Each series has two values of its own (probe, resolver): 140 000 ids, most of them two code units.
  const ops = Array.from({ length: n }, (_, i) => ttl(`p${i}`, `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, i));
  store.apply(SampleOps.from(ops));
  assert.equal(store.size, n);
  assert.equal(store.ids.size, 2 * n + 3, 'each distinct value once (eu, the name and A shared)');
  for (let i = 0; i < n; i += 997) {
    const op = ops[i] as SampleOp;
    const s = store.get('dnsTtl', op.labels);
    assert.equal(s?.value, i, `series ${i} found by its own labels`);
    assert.match(s?.body ?? '', new RegExp(`probe="p${i}",`));
  }
  // Labels of which one value is unknown, and a mix of two series' values, find nothing.
  assert.equal(store.get('dnsTtl', { ...(ops[5] as SampleOp).labels, probe: 'p-unknown' }), undefined);
  assert.equal(store.get('dnsTtl', { ...(ops[5] as SampleOp).labels, probe: 'p6' }), undefined);

  for (const op of ops.slice(0, n - 1)) {
    const s = store.get('dnsTtl', op.labels);
    if (s) store.drop(s);
  }
  assert.equal(store.size, 1);
  assert.equal(store.ids.size, 5, 'only the last series’ values are left');
  assert.equal(store.get('dnsTtl', (ops[n - 1] as SampleOp).labels)?.value, n - 1);
});

test('the label-value table stays bounded while probes come and go', () => {
  const store = new SeriesStore();
  for (let round = 0; round < 20; round++) {
    const ops = Array.from({ length: 500 }, (_, i) => ttl(`p${round}-${i}`, `r${i}`, round));
    store.apply(SampleOps.from(ops));
    assert.ok(store.ids.size <= 2 * 500 + 3, `round ${round}: ${store.ids.size} values interned`);
    for (const op of ops) {
      const s = store.get('dnsTtl', op.labels);
      assert.equal(s?.value, round, 'a reused id finds the new value’s series');
      if (s) store.drop(s);
    }
  }
  assert.equal(store.size, 0);
  assert.equal(store.ids.size, 0);
});

test('a one-of gauge switching back and forth keeps one series of its group, whose values no other series holds', async () => {
  const store = new SeriesStore();
  const labels = { region: 'eu', probe: 'p-only', resolver: '192.0.2.99', resolver_name: 'lonely', name: 'mail.company.test', type: 'AAAA' };
  const sides = ['old', 'new', 'both', 'new', 'old', 'error', 'old'];
  for (const [i, side] of sides.entries()) {
    store.apply(SampleOps.from([{ op: 'one-of', metric: 'dnsAnswerSide', labels: { ...labels }, label: 'side', value: side, ts: TS + i }]));
    const lines = (await store.text()).split('\n').filter((l) => l.startsWith('mailprobe_dns_answer_side{'));
    assert.deepEqual(
      lines,
      [
        `mailprobe_dns_answer_side{region="eu",probe="p-only",resolver="192.0.2.99",resolver_name="lonely",name="mail.company.test",type="AAAA",side="${side}"} 1`,
      ],
      `after switch ${i} to ${side}`,
    );
    assert.equal(store.size, 1);
  }
  assert.equal(store.ids.size, 7, 'the six group values and the current side');
  const s = store.get('dnsAnswerSide', { ...labels, side: 'old' });
  assert.ok(s);
  store.drop(s);
  assert.equal(store.ids.size, 0);
});

test('a key the caller built before apply keeps naming its labels while apply frees and reuses ids', async () => {
  const store = new SeriesStore();
  const f = store.family('dnsAnswerSide');
  assert.ok(f);
  const base = { region: 'eu', probe: 'p1', resolver_name: 'n', name: 'mail.company.test', type: 'A' };
  // The value `only-here` is held by one series alone, as the side of group A.
  store.apply(SampleOps.from([{ op: 'one-of', metric: 'dnsAnswerSide', labels: { ...base, resolver: 'a' }, label: 'side', value: 'only-here', ts: TS }]));
  const ops: SampleOp[] = [
    // A switches away from `only-here`: its id is freed during the apply …
    { op: 'one-of', metric: 'dnsAnswerSide', labels: { ...base, resolver: 'a' }, label: 'side', value: 'old', ts: TS + 1 },
    // … B's new resolver value is interned then (it would take the freed id) …
    { op: 'one-of', metric: 'dnsAnswerSide', labels: { ...base, resolver: 'b-new' }, label: 'side', value: 'old', ts: TS + 1 },
    // … and C's group key, built before the apply as the ingest builds it, holds `only-here` as its resolver.
    { op: 'one-of', metric: 'dnsAnswerSide', labels: { ...base, resolver: 'only-here' }, label: 'side', value: 'new', ts: TS + 1 },
  ];
  const groups = ops.map((op) => (op.op === 'one-of' ? f.keyOf(f.valuesOf(op.labels), 0, f.exclusiveAt) : undefined));
  assert.ok(groups[2] !== undefined, 'C’s group key is built from interned values');
  store.apply(SampleOps.from(ops), undefined, undefined, groups);
  const lines = (await store.text()).split('\n').filter((l) => l.startsWith('mailprobe_dns_answer_side{'));
  assert.deepEqual(lines.map((l) => /resolver="([^"]*)".*side="([^"]*)"/.exec(l)?.slice(1, 3).join('=')).sort(), ['a=old', 'b-new=old', 'only-here=new']);
});
