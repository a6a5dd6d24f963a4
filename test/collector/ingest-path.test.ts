/**
 * The shortcuts of the push path, each against the plain way it replaces: the store applies a
 * series the ingest looked up already exactly as it applies the operation's labels (and not into
 * a series that left the store since); a verdict reported again unchanged is not decided again,
 * and what the fleet is shown stays what a full decision gives; a token is found by its digest
 * (one lookup, not a comparison per probe).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Consensus } from '../../collector/consensus.js';
import { hashToken, tokenLookup } from '../../collector/plugins/auth.js';
import { resultOps, SampleOps, type SampleOp } from '../../collector/samples.js';
import { SeriesStore, type Series } from '../../collector/store/series-store.js';
import { mixedResults } from '../support/results.js';

test('the store applies a series looked up before as it applies the labels; a series dropped since is not written to', async () => {
  const t = Date.parse('2026-03-01T10:00:00Z');
  const probe = { id: 'p-eu', region: 'eu' };
  // Two pushes of the same checks: the second one's series exist, the first one's do not.
  const pushes = [mixedResults(t), mixedResults(t + 60_000)].map((rs) => {
    const ops = new SampleOps();
    for (const r of rs) resultOps(probe, r, ops);
    return ops;
  });
  const plain = new SeriesStore();
  const looked = new SeriesStore();
  for (const ops of pushes) {
    plain.apply(ops);
    const found = ops.list().map((op, i) => (op.op === 'one-of' ? undefined : looked.family(op.metric)?.find(ops.labels, ops.start[i])));
    looked.apply(ops, found);
  }
  assert.ok(plain.size > 50, `the pushes make series (${plain.size})`);
  assert.equal(await looked.text(), await plain.text());
  assert.equal(await looked.text(true), await plain.text(true));

  // A series dropped between lookup and apply (a sweep): the value goes to a new series of the
  // same labels, the dropped one keeps what it had.
  const op = pushes[1]?.list().find((o): o is SampleOp & { op: 'set' } => o.op === 'set' && o.metric === 'dnsTtl');
  assert.ok(op, 'a dnsTtl gauge among the operations');
  const old = looked.get(op.metric, op.labels) as Series;
  const before = old.value;
  looked.drop(old);
  looked.apply(SampleOps.from([{ ...op, value: before + 1234, ts: op.ts + 1 }]), [old]);
  const now = looked.get(op.metric, op.labels);
  assert.notEqual(now, old, 'a new series');
  assert.equal(now?.value, before + 1234);
  assert.equal(old.value, before, 'the dropped series is not written to');
});

test('a series body is rendered exactly: catalogue order, absent labels left out, values escaped, a one-of value in its place', async () => {
  const store = new SeriesStore();
  const ts = Date.parse('2026-03-01T10:00:00Z');
  const labels = { region: 'eu', probe: 'p"1', resolver: 'c:\\dns', resolver_name: 'two\nlines', name: 'mail.company.test', type: 'A' };
  // Given out of the catalogue's order, with a label the metric does not have.
  const shuffled = {
    type: labels.type,
    name: labels.name,
    extra: 'x',
    resolver_name: labels.resolver_name,
    resolver: labels.resolver,
    probe: labels.probe,
    region: labels.region,
  };
  store.apply(
    SampleOps.from([
      { op: 'set', metric: 'dnsTtl', labels: shuffled, value: 300, ts },
      { op: 'one-of', metric: 'dnsAnswerSide', labels, label: 'side', value: 'née', ts },
      { op: 'set', metric: 'tlsCertValid', labels: { ip: '127.0.0.2', side: 'old' }, value: 1, ts },
      { op: 'set', metric: 'dnsTtl', labels: { region: 'eu', probe: 'p"1', resolver: 'r', name: 'mail.company.test', type: 'A' }, value: 60, ts },
    ]),
  );
  const lines = (await store.text()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(lines.sort(), [
    'mailprobe_dns_answer_side{region="eu",probe="p\\"1",resolver="c:\\\\dns",resolver_name="two\\nlines",name="mail.company.test",type="A",side="née"} 1',
    'mailprobe_dns_ttl_seconds{region="eu",probe="p\\"1",resolver="c:\\\\dns",resolver_name="two\\nlines",name="mail.company.test",type="A"} 300',
    'mailprobe_dns_ttl_seconds{region="eu",probe="p\\"1",resolver="r",name="mail.company.test",type="A"} 60',
    'mailprobe_tls_cert_valid{ip="127.0.0.2",side="old"} 1',
  ]);
  const f = store.family('dnsAnswerSide');
  assert.equal(
    f?.body(f.valuesOf(labels), 0, f.exclusiveAt),
    'region="eu",probe="p\\"1",resolver="c:\\\\dns",resolver_name="two\\nlines",name="mail.company.test",type="A"',
  );
  const ttl = store.family('dnsTtl');
  assert.equal(ttl?.find(ttl.valuesOf(shuffled)), store.get('dnsTtl', labels), 'found by its labels in any order');
});

/** The documented rule, decided from scratch on every report (what Consensus did before it skipped unchanged reports). */
class Reference<T extends number | string> {
  readonly votes = new Map<string, Map<string, T>>();
  readonly shown = new Map<string, T>();
  vote(key: string, probe: string, value: T): T {
    const v = this.votes.get(key) ?? new Map<string, T>();
    this.votes.set(key, v);
    v.set(probe, value);
    return this.#decide(key);
  }
  forget(probe: string): { key: string; value: T }[] {
    const changed: { key: string; value: T }[] = [];
    for (const [key, v] of this.votes) {
      if (!v.delete(probe) || v.size === 0) continue;
      const before = this.shown.get(key);
      const value = this.#decide(key);
      if (value !== before) changed.push({ key, value });
    }
    return changed;
  }
  #decide(key: string): T {
    const values = [...(this.votes.get(key) ?? new Map<string, T>()).values()];
    const shown = this.shown.get(key);
    let out: T;
    if (typeof values[0] === 'number') {
      // The median; with an even count and the middle two apart, what is shown if between them, else the lower.
      const nums = (values as number[]).slice().sort((a, b) => a - b);
      const lo = nums[(nums.length - 1) >> 1] as number;
      const hi = nums[nums.length >> 1] as number;
      out = (lo === hi ? lo : shown !== undefined && (shown as number) >= lo && (shown as number) <= hi ? shown : lo) as T;
    } else {
      // More than half of the probes, else what is shown so far (the first report at first).
      const counts = new Map<T, number>();
      for (const x of values) counts.set(x, (counts.get(x) ?? 0) + 1);
      out = [...counts].find(([, c]) => c * 2 > values.length)?.[0] ?? shown ?? (values[0] as T);
    }
    this.shown.set(key, out);
    return out;
  }
}

test('a verdict reported again unchanged keeps what a full decision shows (random reports and silent probes, numbers and labels)', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const probes = ['a', 'b', 'c', 'd', 'e'];
  const keys = ['k1', 'k2', 'k3'];
  for (const kind of ['number', 'string'] as const) {
    const got = new Consensus<number | string>();
    const want = new Reference<number | string>();
    let repeats = 0;
    for (let step = 0; step < 20_000; step++) {
      const probe = probes[rnd(probes.length)] as string;
      if (rnd(40) === 0) {
        assert.deepEqual(got.forget(probe), want.forget(probe), `step ${step}: forget ${probe}`);
        continue;
      }
      const key = keys[rnd(keys.length)] as string;
      // Few values, so that most reports repeat the probe's last one (the skipped case).
      const n = rnd(10) < 8 ? 1 : rnd(4);
      const value = kind === 'number' ? n * 10 : `v${n}`;
      if (want.votes.get(key)?.get(probe) === value) repeats++;
      assert.equal(got.vote(key, probe, value), want.vote(key, probe, value), `step ${step}: ${probe} reports ${value} for ${key}`);
      assert.equal(got.shown(key), want.shown.get(key));
    }
    assert.ok(repeats > 5000, `unchanged reports were exercised (${repeats})`);
  }
});

test('a token is found by its digest: each probe by its own, an unknown one not, a token given twice names the first probe', () => {
  const tokens = {
    'p-1': hashToken('token-1'),
    'p-2': { region: 'eu', hash: hashToken('token-2') },
    'p-3': hashToken('shared'),
    'p-4': hashToken('shared'),
  };
  const lookup = tokenLookup(tokens);
  assert.deepEqual(lookup('token-1'), { id: 'p-1', region: undefined });
  assert.deepEqual(lookup('token-2'), { id: 'p-2', region: 'eu' });
  assert.deepEqual(lookup('shared'), { id: 'p-3', region: undefined });
  assert.equal(lookup('token-3'), undefined);
  assert.equal(lookup(''), undefined);
  assert.equal(lookup(hashToken('token-1')), undefined, 'the stored digest is not a token');
});
