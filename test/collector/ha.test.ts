/**
 * The HA pair (deploy/README.md) against a real Prometheus: probes push every batch to every collector;
 * Prometheus scrapes two collectors (and, in the same run, receives two remote-writing
 * collectors). The deduplicated queries (`max without (instance)`, as the recording rules do)
 * answer as one collector would, never twice, and killing one collector mid-run leaves no gap:
 * every step of a 1 s range query has a point, before and after the kill.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import type { RemoteWriteOutput } from '../../collector/outputs/remote-write.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { startRemoteWritePrometheus, type RemoteWritePrometheus } from '../../bench/lib/prometheus-rw.js';
import { FIXTURE_PROBES, probeBatch } from '../deploy/fixtures.js';

interface Series {
  metric: Record<string, string>;
  values: [number, string][];
}

async function queryRange(prom: RemoteWritePrometheus, expr: string, start: number, end: number): Promise<Series[]> {
  const qs = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: '1' });
  const r = await request(`${prom.url}/api/v1/query_range?${qs}`);
  const body = (await r.body.json()) as { status: string; error?: string; data: { resultType: string; result: Series[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

/** Steps in [start, end] (1 s apart) that have no point in a series. */
function gaps(s: Series, start: number, end: number): number[] {
  const have = new Set(s.values.map(([t]) => Math.round(t)));
  const missing: number[] = [];
  for (let t = Math.ceil(start); t <= end; t++) if (!have.has(t)) missing.push(t - Math.ceil(start));
  return missing;
}

const rwOf = (c: TestCollector): RemoteWriteOutput => c.ingest.outputs.find((o) => o.name === 'remote-write') as RemoteWriteOutput;

test('an HA pair, scraped and remote-written: deduplicated answers, and no gap when one collector dies', async () => {
  const scrapedA = await startTestCollector(testPlan());
  const scrapedB = await startTestCollector(testPlan());
  const prom = await startRemoteWritePrometheus({ targets: [new URL(scrapedA.url).host, new URL(scrapedB.url).host], ruleFiles: [] });
  const rw = (replica: string) =>
    startTestCollector(
      testPlan({ collector: { remote_write: { url: prom.writeUrl, replica, job: 'mailprobe-rw', flush_interval: '100ms', resend_interval: '1s' } } }),
    );
  const writerC = await rw('rw-c');
  const writerD = await rw('rw-d');
  const alive = new Set<TestCollector>([scrapedA, scrapedB, writerC, writerD]);
  try {
    await prom.waitForScrapes(1);
    const rounds = 8;
    const killAt = 4;
    let start = 0;
    let killedAt = 0;
    for (let round = 0; round < rounds; round++) {
      if (round === killAt) {
        // One of each pair goes away mid-run (the writer with its stale markers, as on SIGTERM).
        killedAt = Math.floor(Date.now() / 1000);
        await scrapedB.close();
        await writerD.close();
        alive.delete(scrapedB);
        alive.delete(writerD);
      }
      const t = Date.now();
      for (const p of FIXTURE_PROBES) {
        const b = probeBatch(p, round, t);
        // The probe pushes each batch to every collector it lists; a dead one just fails.
        for (const c of alive) assert.equal((await c.push(b)).status, 200);
      }
      await Promise.all([...alive].filter((c) => c === writerC || c === writerD).map((c) => rwOf(c).flush()));
      if (round === 0) {
        // Gaps are counted from the second scrape that holds the first round (rate() needs two).
        await prom.waitForScrapes(1);
        start = Math.ceil(Date.now() / 1000) + 1;
      } else await sleep(1000);
    }
    // B is down for good: wait two scrapes of A rather than for every target.
    await sleep(2000);
    const end = Math.floor(Date.now() / 1000) - 1;

    const up = await prom.vector('up{job="mailprobe-collector"}');
    assert.deepEqual(
      up.map((s) => `${s.metric.instance}=${s.value[1]}`).sort(),
      [`${new URL(scrapedA.url).host}=1`, `${new URL(scrapedB.url).host}=0`].sort(),
      'B is really down',
    );

    for (const job of ['mailprobe-collector', 'mailprobe-rw']) {
      // Before the kill both copies exist; the deduplicated query shows one.
      assert.ok(killedAt > start, 'the kill came after the first full scrape');
      const copies = await queryRange(prom, `count without (instance) (mailprobe_smtp_up{job="${job}"})`, start, killedAt - 1);
      assert.ok(
        copies.length > 0 && copies.every((s) => s.values.every(([, v]) => v === '2')),
        `${job}: two copies of every series before the kill: ${JSON.stringify(copies.map((s) => s.values))}`,
      );

      for (const expr of [
        `max without (instance) (mailprobe_smtp_up{job="${job}"})`,
        `max without (instance) (mailprobe_dns_answer_side{job="${job}", type="A"})`,
        `sum by (region) (max without (instance) (mailprobe_checks_total{job="${job}"}))`,
        `histogram_quantile(0.9, sum by (region, le) (max without (instance) (rate(mailprobe_dns_lookup_duration_seconds_bucket{job="${job}"}[5s]))))`,
      ]) {
        const series = await queryRange(prom, expr, start, end);
        assert.ok(series.length > 0, `${expr}: data`);
        for (const s of series)
          assert.deepEqual(gaps(s, start, end), [], `${expr} ${JSON.stringify(s.metric)}: a point every second from start to end (${end - start + 1} s)`);
      }

      // Counted once: after all rounds the deduplicated total is what one collector counted.
      const totals = await prom.vector(`sum(max without (instance) (mailprobe_checks_total{job="${job}"}))`);
      const perRound = FIXTURE_PROBES.reduce((n, p) => n + probeBatch(p, 0).results.length, 0);
      assert.equal(Number(totals[0]?.value[1]), perRound * rounds, `${job}: every result counted once`);
      // And the counter never went backwards or doubled while one collector died.
      const over = await queryRange(prom, `sum(max without (instance) (mailprobe_checks_total{job="${job}"}))`, start, end);
      const values = (over[0]?.values ?? []).map(([, v]) => Number(v));
      assert.ok(
        values.every((v, i) => i === 0 || v >= (values[i - 1] ?? 0)),
        `${job}: total never drops: ${values.join(',')}`,
      );
      assert.ok((values.at(-1) ?? 0) <= perRound * rounds, `${job}: never double-counted`);
    }
  } finally {
    for (const c of alive) await c.close();
    await prom.stop();
  }
});
