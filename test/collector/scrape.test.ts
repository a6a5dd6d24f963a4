/**
 * A scrape of a large exposition does not hold pushes back: the collector streams the series
 * store in bounded slices (~64 KiB) and gives the event loop back after every one of them, so
 * waiting pushes run in between.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { resultOps } from '../../collector/samples.js';
import { SeriesStore } from '../../collector/store/series-store.js';
import type { DnsResult } from '../../protocol/results.js';
import { startTestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { batchOf, mixedResults } from '../support/results.js';

test('a push is answered while a scrape of ~100k series is still rendering', async () => {
  const c = await startTestCollector(testPlan({ collector: { max_series_per_probe: 200_000, body_limit: '16MiB' } }));
  try {
    const dns = mixedResults().find((r): r is DnsResult => r.type === 'dns')!;
    // 10 000 resolvers × (answer side + ttl + lookups + 13-bucket histogram) ≈ 100k series.
    for (let k = 0; k < 10; k++) {
      const results = Array.from({ length: 1000 }, (_, i) => ({ ...dns, resolver: `10.0.${k}.${i}` }));
      assert.equal((await c.push(batchOf(results, { id: 'p-ap', region: 'ap' }))).status, 200);
    }
    const order: string[] = [];
    // The exposition is streamed: the push starts once the first slice arrived and must be
    // answered before the last one (test/collector/store.test.ts checks the slices themselves).
    let push: Promise<{ status: number }> | undefined;
    const scrape = request(`${c.url}/metrics`).then(async (r) => {
      let text = '';
      for await (const chunk of r.body) {
        text += chunk.toString();
        push ??= c.push(batchOf(mixedResults(), { id: 'p-eu', region: 'eu' })).then((p) => {
          order.push('push');
          return p;
        });
      }
      order.push('scrape rendered');
      return text;
    });
    const text = await scrape;
    const pushed = await push;
    assert.ok(pushed, 'the scrape sent its body');
    assert.equal(pushed.status, 200);
    const series = text.split('\n').filter((l) => l.startsWith('mailprobe_')).length;
    assert.ok(series > 90_000, `${series} series rendered`);
    assert.deepEqual(order, ['push', 'scrape rendered'], 'the push did not wait for the render');
  } finally {
    await c.close();
  }
});

test('every slice of a scrape is ~64 KiB at most and the event loop turns after each one', async () => {
  const store = new SeriesStore();
  const dns = mixedResults().find((r): r is DnsResult => r.type === 'dns')!;
  for (let i = 0; i < 3000; i++) store.apply(resultOps({ id: 'p-eu', region: 'eu' }, { ...dns, resolver: `10.0.${i >> 8}.${i & 255}` }));
  let turned = true;
  let slices = 0;
  let text = '';
  for await (const slice of store.stream(false)) {
    // An immediate queued now runs before the next slice only if the scrape yields to the event
    // loop in between (where a waiting push is read and answered).
    assert.ok(turned, `slice ${slices + 1} came in the same event-loop turn as slice ${slices}`);
    turned = false;
    setImmediate(() => {
      turned = true;
    });
    // 64 KiB, plus the one series (a histogram's 16 lines, < 4 KiB here) that crossed the mark.
    assert.ok(slice.length <= 64 * 1024 + 4096, `slice ${slices + 1} holds ${slice.length} characters`);
    slices++;
    text += slice;
  }
  assert.equal(text, await store.text());
  assert.ok(text.length > 20 * 64 * 1024, `${text.length} characters`);
  assert.ok(slices >= text.length / (64 * 1024 + 4096), `${slices} slices for ${text.length} characters`);
});

test('two scrapes at the same time, and one given up after its first slice, each render the whole store', async () => {
  const store = new SeriesStore();
  const dns = mixedResults().find((r): r is DnsResult => r.type === 'dns')!;
  for (let i = 0; i < 3000; i++) store.apply(resultOps({ id: 'p-eu', region: 'eu' }, { ...dns, resolver: `10.0.${i >> 8}.${i & 255}` }));
  const whole = await store.text();
  assert.ok(whole.length > 10 * 64 * 1024, `${whole.length} characters`);
  // The first scrape stops inside a family's slice run; a second renders everything meanwhile.
  const first = store.stream(false);
  let a = (await first.next()).value ?? '';
  assert.equal(await store.text(), whole, 'the scrape started while another was rendering');
  for (let r = await first.next(); !r.done; r = await first.next()) a += r.value;
  assert.equal(a, whole, 'the scrape that was interrupted by the other');
  // A client gone after one slice (the stream is ended early), then two more at once.
  const gone = store.stream(true);
  await gone.next();
  await gone.return(undefined);
  const om = await store.text(true);
  assert.ok(om.startsWith('# HELP'), om.slice(0, 80));
  const [x, y] = await Promise.all([store.text(), store.text()]);
  assert.equal(x, whole);
  assert.equal(y, whole);
});
