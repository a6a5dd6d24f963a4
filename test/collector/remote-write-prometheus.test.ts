/**
 * The remote-write output against a REAL Prometheus (Debian package) with the remote-write
 * receiver on: samples arrive with the probe's timestamps and the replica's job/instance, stale
 * markers end series at once, and every recording rule and dashboard query gives the same answer
 * on remote-written data as on scraped data (the same batches pushed to a scraped collector and to
 * a remote-writing one).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import type { RemoteWriteOutput } from '../../collector/outputs/remote-write.js';
import { panelQueries, substituteVariables } from '../../grafana/index.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { DEPLOY_RULE_FILES, startTestPrometheus, type TestPrometheus } from '../../bench/lib/prometheus.js';
import { startRemoteWritePrometheus, type RemoteWritePrometheus } from '../../bench/lib/prometheus-rw.js';
import { batchOf, mixedResults, NEW_IP, OLD_IP } from '../support/results.js';
import { FIXTURE_PROBES, probeBatch } from '../deploy/fixtures.js';
import { rows } from '../support/query-rows.js';
import { METRICS, type MetricDef } from '../../protocol/metrics.js';

const rwOf = (c: TestCollector): RemoteWriteOutput => {
  const out = c.ingest.outputs.find((o) => o.name === 'remote-write');
  if (!out) throw new Error('no remote-write output');
  return out as RemoteWriteOutput;
};

const rwPlan = (url: string, replica: string, collector: Record<string, unknown> = {}, resend = '1m') =>
  testPlan({ collector: { remote_write: { url, replica, flush_interval: '100ms', resend_interval: resend }, ...collector } });

test('a real Prometheus receives the samples with the probe timestamps; stale markers end series at once', async () => {
  const prom = await startRemoteWritePrometheus({ ruleFiles: [] });
  const c = await startTestCollector(rwPlan(prom.writeUrl, 'rw-a', { probe_stale_after: '2s' }), { sweepIntervalMs: 100 });
  try {
    const t = Date.now() - 7000;
    assert.equal((await c.push(batchOf(mixedResults(t), { id: 'p-eu', region: 'eu' }))).status, 200);
    assert.equal((await c.push(batchOf(mixedResults(t + 1000), { id: 'p-us', region: 'us' }))).status, 200);
    await rwOf(c).flush();
    await prom.waitFor(async () => (await prom.vector('mailprobe_smtp_up')).length === 4, 10_000, 'smtp_up series');

    const up = await prom.vector('timestamp(mailprobe_smtp_up{probe="p-eu"})');
    assert.deepEqual(
      up.map((s) => Number(s.value[1])),
      [t / 1000, t / 1000],
      'sample time is the check start',
    );
    const us = await prom.vector('timestamp(mailprobe_smtp_up{probe="p-us"})');
    assert.deepEqual(
      us.map((s) => Number(s.value[1])),
      [(t + 1000) / 1000, (t + 1000) / 1000],
    );
    const labels = (await prom.vector(`mailprobe_smtp_up{probe="p-eu", ip="${NEW_IP}"}`))[0]?.metric;
    assert.equal(labels?.job, 'mailprobe-collector');
    assert.equal(labels?.instance, 'rw-a');
    const counts = await prom.vector('sum by (probe, ip) (mailprobe_smtp_duration_seconds_count{phase="connect"})');
    assert.deepEqual(
      counts.map((s) => `${s.metric.probe}/${s.metric.ip}=${s.value[1]}`).sort(),
      [`p-eu/${NEW_IP}=2`, `p-eu/${OLD_IP}=1`, `p-us/${NEW_IP}=2`, `p-us/${OLD_IP}=1`].sort(),
    );
    const q = await prom.vector('histogram_quantile(0.5, sum by (le) (mailprobe_dns_lookup_duration_seconds_bucket))');
    assert.ok(Number(q[0]?.value[1]) > 0.0025 && Number(q[0]?.value[1]) <= 0.005, 'histogram buckets are cumulative');

    // p-eu's resolver 8.8.8.8 switches from old to new: the old side's series ends with a stale marker.
    const sideOf = async () => (await prom.vector('mailprobe_dns_answer_side{probe="p-eu", resolver="8.8.8.8", type="A"}')).map((s) => s.metric.side);
    assert.deepEqual(await sideOf(), ['old']);
    const switched = mixedResults(t + 2000).map((r) => (r.type === 'dns' && r.resolver === '8.8.8.8' ? { ...r, side: 'new' as const, answers: [NEW_IP] } : r));
    await c.push(batchOf(switched, { id: 'p-eu', region: 'eu' }));
    await rwOf(c).flush();
    await prom.waitFor(async () => (await sideOf()).join() === 'new', 5000, 'the old side to go stale');

    // p-us stays silent: after probe_stale_after its per-probe gauges get stale markers; counters stay.
    await prom.waitFor(async () => (await prom.vector('mailprobe_smtp_up{probe="p-us"}')).length === 0, 8000, 'p-us gauges to go stale');
    assert.equal((await prom.vector('mailprobe_smtp_checks_total{probe="p-us"}')).length, 3, 'counters are not swept');
  } finally {
    await c.close();
    await prom.stop();
  }
});

/**
 * Queries that read the collector's own metrics (every catalogue metric whose origin is not a
 * result: self-metrics, the plan-derived window, quiet time and server names, the probe's last
 * push and spool; and `up`): they describe the collector process and come from scraping its
 * /metrics in either mode; remote write carries the results' series.
 */
const SELF = new RegExp(
  [
    '\\bup\\{',
    'ALERTS',
    ...Object.values(METRICS as Record<string, MetricDef>)
      .filter((m) => m.origin !== 'result')
      .map((m) => `\\b${m.name}(?:_bucket|_sum|_count)?\\b`),
  ].join('|'),
);

/**
 * Absolute rates and increases (not ratios or quantiles of them): each mode extrapolates from its
 * own sample times (scrape times or check times), so they agree only approximately; ratios and
 * quantiles scale numerator and denominator alike and agree exactly.
 */
const ABSOLUTE_RATE = /^(?!.*histogram_quantile)(?!.*\/).*\b(rate|increase)\(/s;
/** Tolerance for absolute rates (measured: within 15 %). */
const RATE_TOLERANCE = 0.3;
/** Ratios and quantiles of rates: resends land a few ms apart per series (measured: within 0.3 %). */
const RATIO_TOLERANCE = 0.01;
const toleranceOf = (expr: string, absolute: boolean): number =>
  absolute ? RATE_TOLERANCE : /\b(rate|increase)\(|:ratio|:quantile|_rate\d/.test(expr) ? RATIO_TOLERANCE : 1e-9;

let scraped: TestCollector;
let written: TestCollector;
let promScrape: TestPrometheus;
let promWrite: RemoteWritePrometheus;
let at = 0;

before(async () => {
  scraped = await startTestCollector(testPlan());
  [promWrite, promScrape] = await Promise.all([startRemoteWritePrometheus(), startTestPrometheus({ targets: [new URL(scraped.url).host] })]);
  // Resends every second play the part of the 1 s scrape: unchanged counters keep their samples.
  written = await startTestCollector(rwPlan(promWrite.writeUrl, 'rw-b', {}, '1s'));
  for (let round = 0; round < 3; round++) {
    const t = Date.now();
    for (const p of FIXTURE_PROBES) {
      const b = probeBatch(p, round, t);
      assert.equal((await scraped.push(b)).status, 200);
      assert.equal((await written.push(b)).status, 200);
    }
    await rwOf(written).flush();
    await promScrape.waitForScrapes(1, 20_000);
  }
  await promScrape.waitForScrapes(1, 20_000);
  // Both evaluate their rules every second: wait for two rounds after the last sample.
  await new Promise((r) => setTimeout(r, 2500));
  at = Date.now() / 1000;
});

after(async () => {
  await written?.close();
  await scraped?.close();
  await promScrape?.stop();
  await promWrite?.stop();
});

function same(a: number, b: number, rel: number): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  return a === b || Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));
}

async function compare(expr: string, rel: number): Promise<string | undefined> {
  const [s, w] = await Promise.all([promScrape.query(expr, at), promWrite.query(expr, at)]);
  const rs = rows(s);
  const rw = rows(w);
  if (rs.length === 0) return `${expr}: no data even when scraped`;
  if (rs.map((r) => r[0]).join('|') !== rw.map((r) => r[0]).join('|'))
    return `${expr}: series differ\n scraped ${JSON.stringify(rs)}\n written ${JSON.stringify(rw)}`;
  for (let i = 0; i < rs.length; i++) {
    const a = rs[i]?.[1] ?? Number.NaN;
    const b = rw[i]?.[1] ?? Number.NaN;
    if (!same(a, b, rel)) return `${expr}: ${rs[i]?.[0]}: scraped ${a}, written ${b}`;
  }
  return undefined;
}

const recordingRules = (): { record: string; expr: string }[] =>
  DEPLOY_RULE_FILES.flatMap((f) => (parse(readFileSync(f, 'utf8')) as { groups: { rules: { record?: string; expr: string }[] }[] }).groups)
    .flatMap((g) => g.rules)
    .filter((r): r is { record: string; expr: string } => typeof r.record === 'string');

/**
 * Whether an expression reads the collector's own metrics, directly or through a recording rule
 * that does (a rule over a plan gauge, such as the old IP's quiet time, is only as whole as the
 * own-metrics scrape beside the remote write).
 */
function readsSelf(): (expr: string) => boolean {
  const selfRecorded = new Set<string>();
  const rules = recordingRules();
  const reads = (expr: string) => SELF.test(expr) || [...selfRecorded].some((name) => expr.includes(name));
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of rules)
      if (!selfRecorded.has(r.record) && reads(r.expr)) {
        selfRecorded.add(r.record);
        grew = true;
      }
  }
  return reads;
}

test('every recording rule gives the same answer on remote-written data as on scraped data', async () => {
  const problems: string[] = [];
  const rules = recordingRules();
  const isSelf = readsSelf();
  assert.ok(rules.length >= 8);
  let compared = 0;
  for (const r of rules) {
    if (isSelf(r.expr)) continue;
    compared++;
    const rel = toleranceOf(r.expr, ABSOLUTE_RATE.test(r.expr));
    const p = await compare(r.expr, rel);
    if (p) problems.push(`${r.record}: ${p}`);
    // The recorded series too (each Prometheus evaluated its own rules).
    const q = await compare(r.record, rel);
    if (q) problems.push(q);
  }
  assert.deepEqual(problems, []);
  assert.ok(compared >= 8, `compared ${compared} rules`);
});

test('every dashboard query over the results gives the same answer on remote-written data as on scraped data', async () => {
  const problems: string[] = [];
  const absoluteRecorded = recordingRules()
    .filter((r) => ABSOLUTE_RATE.test(r.expr))
    .map((r) => r.record);
  let compared = 0;
  let absolute = 0;
  const isSelf = readsSelf();
  for (const q of panelQueries()) {
    if (isSelf(q.expr)) continue;
    const expr = substituteVariables(q.expr);
    // Absolute rates differ by how far each mode extrapolates past its first and last sample
    // (scrapes every second vs the three check times); ratios and quantiles do not.
    const rate = ABSOLUTE_RATE.test(expr) || absoluteRecorded.some((name) => expr.includes(name));
    if (rate) absolute++;
    const p = await compare(expr, toleranceOf(expr, rate));
    if (p) problems.push(`${q.dashboard} / ${q.panel}: ${p}`);
    compared++;
  }
  assert.deepEqual(problems, []);
  assert.ok(compared >= 30, `compared ${compared} queries`);
  console.log(`# ${compared} dashboard queries compared, ${absolute} of them absolute rates`);
});
