/**
 * VictoriaMetrics as the store, set up as docs/scaling-out.md says: the lab (DNS world, old and new
 * MTAs, sink, three real probes, the world held still inside the window) pushes to a collector that
 * remote-writes the results (results_on_metrics: false) to a real single-node VictoriaMetrics
 * (Debian's `victoria-metrics`), which scrapes the collector's own metrics itself
 * (-promscrape.config); vmalert evaluates the shipped rules with -remoteWrite.url and
 * -remoteRead.url. A real Prometheus (remote-write receiver on, the same rules) gets the same
 * samples through a second remote-write output of the collector and scrapes the same /metrics.
 *
 * Checked: every remote-written counter sample lands at the time of the check that moved it
 * (a tap output records the accepted results), counters never decrease, histograms are cumulative
 * with +Inf = _count; a receiver outage of a few seconds is bridged (the checks made meanwhile are
 * all there, nothing dropped) and restarts none of vmalert's `for:` timers (its query step is
 * the documented 5m); after the probes stop, every result series and value in VictoriaMetrics
 * equals Prometheus's; vmalert fires the same alerts as Prometheus for the same faults; and every
 * dashboard query answers the same on both engines. Both stores hold the same
 * result samples (check times) and each scrapes the collector's own metrics. Queries over ranges
 * (rates, ratios, quantiles, recorded series) are compared while the probes run: the engines treat
 * a window's edges differently (Prometheus extrapolates) and evaluate rules and scrape on their own
 * clocks, so VictoriaMetrics' answer must match Prometheus's at some moment within 3 s of it:
 * within 35 % (a 16 s window holds about eight checks, and the engines' windows differ by about one
 * check interval), quantiles within two buckets, for the series older than the window (for a
 * younger one, such as a failure class first seen a moment ago, VictoriaMetrics divides by the span
 * of its samples and Prometheus by the window). A recorded series of a rule chained on
 * another recorded series may still be missing in VictoriaMetrics (vmalert's lag): at most two panels. Every other query is compared once the
 * probes have stopped and both stores hold the same state: exactly (sample times within 4 s).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Output } from '../../collector/outputs/output.js';
import { RESULT_METRICS } from '../../collector/store/series-store.js';
import { RemoteWriteOutput } from '../../collector/outputs/remote-write.js';
import { Registry } from 'prom-client';
import { ALL_VARIABLES, panelQueries, substituteVariables } from '../../grafana/index.js';
import { LAB_DNSBL, LAB_NEW_IP, LAB_OLD_IP, startLabCutover } from '../../lab/cutover.js';
import { compressRules, DEPLOY_RULE_FILES, type ActiveAlert } from '../../bench/lib/prometheus.js';
import { startRemoteWritePrometheus } from '../../bench/lib/prometheus-rw.js';
import { freePort } from '../../bench/lib/bench-processes.js';
import { startVictoriaMetrics, startVmalert } from '../../bench/lib/victoria-metrics.js';
import { METRICS, type MetricDef } from '../../protocol/metrics.js';
import type { CheckResult } from '../../protocol/results.js';
import type { ProbeInfo } from '../../protocol/wire.js';
import { rows, type Row } from '../support/query-rows.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REGIONS = ['eu', 'us', 'ap'] as const;
const DURATION_MS = 60_000;
/** The lab's rules run 120× faster (its 60 s stand for two hours). */
const FACTOR = Math.round((120 * 60_000) / DURATION_MS);
const REPLICA = 'vm-lab';
/**
 * Range of the compressed rules and of the dashboards' $__rate_interval/$__range: long enough to
 * hold several checks (every 2 s) in both engines, shorter than the run.
 */
const RANGE_S = 16;
const VARIABLES = { ...ALL_VARIABLES, __rate_interval: `${RANGE_S}s`, __range: `${RANGE_S}s` };
/** Queries whose answers depend on where samples fall in a range (rates, ratios and quantiles of rates, recorded series). */
const SAMPLED = /\b(rate|increase|irate|delta|deriv)\(|_over_time\(|:ratio|:rate|:quantile|_rate\d|:session_mean/;

/** Names of every series the results make (histograms with their suffixes). */
const RESULT_NAMES = RESULT_METRICS.flatMap((k) => {
  const d = METRICS[k];
  return d.type === 'histogram' ? [`${d.name}_bucket`, `${d.name}_sum`, `${d.name}_count`] : [d.name];
});
const RESULT_RE = RESULT_NAMES.join('|');

/** Records the probe time of every accepted SMTP check, per probe and IP (one sample per batch: its newest check). */
class CheckTimes implements Output {
  readonly name = 'check-times';
  readonly times = new Map<string, number[]>();
  apply(): void {}
  results(probe: ProbeInfo, results: readonly CheckResult[]): void {
    const newest = new Map<string, number>();
    for (const r of results) {
      if (r.type !== 'smtp' || !r.ok) continue;
      const k = `${probe.id}/${r.ip}`;
      newest.set(k, Math.max(newest.get(k) ?? 0, r.startedAt));
    }
    for (const [k, t] of newest) this.times.set(k, [...(this.times.get(k) ?? []), t]);
  }
  remove(): void {}
  async close(): Promise<void> {}
}

const alertKey = (a: ActiveAlert) =>
  JSON.stringify(
    Object.entries(a.labels)
      .filter(([k]) => k !== 'job' && k !== 'alertgroup')
      .sort(([x], [y]) => x.localeCompare(y)),
  );
const firing = (alerts: ActiveAlert[]) => [...new Set(alerts.filter((a) => a.state === 'firing').map(alertKey))].sort();

test('the lab into VictoriaMetrics: check times, counters, histograms, an outage bridged, the same alerts and dashboard answers as Prometheus', {
  timeout: 120_000,
}, async () => {
  const collectorPort = await freePort();
  const collector = `127.0.0.1:${collectorPort}`;
  const rules = Object.fromEntries(DEPLOY_RULE_FILES.map((f) => [basename(f), compressRules(readFileSync(f, 'utf8'), FACTOR, RANGE_S)]));
  const vm = await startVictoriaMetrics({ scrape: [collector] });
  const stops: (() => Promise<void>)[] = [() => vm.stop()];
  let lab: Awaited<ReturnType<typeof startLabCutover>> | undefined;
  try {
    const vmalert = await startVmalert({ url: vm.url, ruleTexts: rules });
    stops.push(() => vmalert.stop());
    const prom = await startRemoteWritePrometheus({ targets: [collector], ruleTransform: (text) => compressRules(text, FACTOR, RANGE_S) });
    stops.push(() => prom.stop());
    const tap = new CheckTimes();
    // Prometheus gets the very same samples through a second remote-write output of the collector.
    const toPrometheus = new RemoteWriteOutput({ url: prom.writeUrl, instance: REPLICA, registry: new Registry(), flushIntervalMs: 200 });
    lab = await startLabCutover({
      // No log follower: it keeps pushing after the probes stop, so its own gauges (last push,
      // spool) move between the two engines' scrapes of the still world.
      mtaLog: false,
      durationMs: DURATION_MS,
      collectorListen: collector,
      prometheus: false,
      timeline: false,
      window: { start: -60_000, end: 1_200_000 },
      interval: '2s',
      // The outage's retries log warnings by design.
      logger: pino({ level: 'error' }),
      // As docs/scaling-out.md sets it up: results only by remote write, /metrics for the collector itself.
      remoteWrite: { url: vm.writeUrl, replica: REPLICA, results_on_metrics: false, flush_interval: '200ms', retry_min: '100ms', retry_max: '500ms' },
      outputs: [tap, toPrometheus],
    });
    assert.equal(lab.collectorUrl, `http://${collector}`, 'the collector got the port both stores scrape');
    // Faults for the alert comparison, from the start so that their series are as old as the others (quick ones: `for: 5m`, 3 s here): the new IP is listed, the new MTA's certificate names another host.
    lab.dns.auth.updateZone({ dnsbl: [{ zone: LAB_DNSBL, listed: { [LAB_NEW_IP]: ['127.0.0.2'] } }] });
    await lab.mtas.setFault('new', { kind: 'bad-cert' });

    const vmVector = async (expr: string) => rows(await vm.query(expr));
    const waitFor = async (what: string, ms: number, check: () => Promise<boolean>) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${seen})\n${vm.log()}`);
        await sleep(250);
      }
    };
    let seen = '';
    await waitFor('every probe in both stores', 30_000, async () => {
      const [a, b] = await Promise.all([vmVector('mailprobe_smtp_up'), prom.vector('mailprobe_smtp_up')]);
      const self = await vmVector('mailprobe_probe_last_push_timestamp_seconds');
      seen = `smtp_up: VictoriaMetrics ${a.length}, Prometheus ${b.length}; last push (scraped): ${self.length}`;
      // (the lab's mta-log follower pushes too)
      return a.length === 2 * REGIONS.length && b.length === 2 * REGIONS.length && self.length >= REGIONS.length;
    });

    // A receiver outage of a few seconds: the collector queues and retries, then catches up.
    const retried = async () =>
      Number(
        (await lab!.registry.getSingleMetric(METRICS.collectorRemoteWriteRequests.name)?.get())?.values.find((v) => v.labels.result === 'retried')?.value ?? 0,
      );
    // vmalert's timers before it: the quick alerts (`for: 5m`, 3 s here) pending or firing already.
    const expected = ['MailprobeNewIPListed', 'MailprobeCertificateInvalid'];
    const activeSince = async () =>
      new Map((await vmalert.alerts()).filter((a) => expected.includes(a.labels.alertname ?? '')).map((a) => [alertKey(a), a.activeAt]));
    let before = new Map<string, string>();
    await waitFor('the quick alerts active in vmalert before the outage', 20_000, async () => {
      before = await activeSince();
      seen = [...before.keys()].join(' ');
      return expected.every((n) => [...before.keys()].some((k) => k.includes(`"${n}"`)));
    });
    const outageFrom = Date.now();
    await vm.pause();
    await sleep(3500);
    await vm.resume();
    const outageTo = Date.now();
    assert.ok((await retried()) > 0, 'the collector felt the outage');
    // The outage restarted no timer: once vmalert has evaluated the quick alerts on the store
    // again, every alert active before it is active since the same evaluation. (When the store
    // came back, their gauges' newest samples were older than VictoriaMetrics' guess of how long a
    // series lasts at a 1 s query step: they vanished for an evaluation and each `for:` started
    // again. With the documented 5m step they last 5 minutes, as in Prometheus.)
    await waitFor('vmalert to evaluate the quick alerts on the store again', 15_000, async () => {
      const rules = (await vmalert.ruleGroups()).flatMap((g) => g.rules).filter((r) => expected.includes(r.name));
      seen = rules.map((r) => `${r.name} ${r.lastEvaluation} ${r.lastError}`).join('; ');
      return rules.length === expected.length && rules.every((r) => Date.parse(r.lastEvaluation) > outageTo && r.lastError === '');
    });
    const after = await activeSince();
    assert.deepEqual(
      [...before.keys()].map((k) => `${k} ${after.get(k)}`),
      [...before].map(([k, t]) => `${k} ${t}`),
      'vmalert keeps its alerts active across the outage',
    );

    await prom.waitFor(
      async () => {
        const now = firing(await prom.alerts());
        return expected.every((n) => now.some((k) => k.includes(`"${n}"`)));
      },
      30_000,
      `${expected.join(', ')} firing in Prometheus`,
    );

    // Both engines agree on what fires (each evaluates on its own clock: wait until they meet).
    let last: [string[], string[]] = [[], []];
    const promFiredAt = Date.now();
    // (A rule on a series vmalert records itself waits for its input's next evaluation and remote write.)
    const agreeBy = promFiredAt + 30_000;
    const differed = new Map<string, number>();
    for (;;) {
      last = [firing(await prom.alerts()), firing(await vmalert.alerts())];
      for (const k of last[0].filter((k) => !last[1].includes(k))) differed.set(`prometheus only: ${k}`, Date.now() - promFiredAt);
      for (const k of last[1].filter((k) => !last[0].includes(k))) differed.set(`vmalert only: ${k}`, Date.now() - promFiredAt);
      if (last[0].join('\n') === last[1].join('\n') && expected.every((n) => last[0].some((k) => k.includes(`"${n}"`)))) break;
      if (Date.now() > agreeBy) break;
      await sleep(500);
    }
    console.log(
      `# alerts: Prometheus fired ${((promFiredAt - outageTo) / 1000).toFixed(1)} s after the outage, vmalert agreed ${((Date.now() - promFiredAt) / 1000).toFixed(1)} s later${[...differed].map(([k, ms]) => `\n#   until ${(ms / 1000).toFixed(1)} s ${k}`).join('')}`,
    );
    if (last[0].join('\n') !== last[1].join('\n')) {
      // What vmalert saw of the alerts it does not fire: its group's and rule's last evaluation, and what VictoriaMetrics answers now.
      const missing = new Set(
        last[0].filter((k) => !last[1].includes(k)).map((k) => (JSON.parse(k) as [string, string][]).find(([l]) => l === 'alertname')?.[1]),
      );
      const seenBy = await vmalert.ruleGroups();
      const lines = [];
      for (const g of seenBy)
        for (const r of g.rules.filter((r) => missing.has(r.name)))
          lines.push(
            `${g.name} (evaluated ${g.lastEvaluation}) / ${r.name}: ${r.health} ${r.state ?? ''}, evaluated ${r.lastEvaluation}, ${r.lastSamples} samples, error ${JSON.stringify(r.lastError)}; VictoriaMetrics now: ${JSON.stringify(await vmVector(r.query))}`,
          );
      assert.fail(
        `vmalert fires what Prometheus fires\n  prometheus ${last[0].join('\n    ')}\n  vmalert    ${last[1].join('\n    ')}\n  now ${new Date().toISOString()}\n  ${lines.join('\n  ')}\n${vm.log()}`,
      );
    }
    for (const n of expected)
      assert.ok(
        last[0].some((k) => k.includes(`"${n}"`)),
        `${n} fires`,
      );
    const unhealthy = (await vmalert.ruleGroups()).flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
    assert.deepEqual(
      unhealthy.map((r) => `${r.name}: ${r.lastError}`),
      [],
      'every shipped rule evaluates in vmalert',
    );

    // Rates, ratios and quantiles while the probes run: both stores hold the same result samples,
    // the engines differ in how they treat a window's edges and in their evaluation clocks.
    const problems: string[] = [];
    const counted = { exact: 0, sampled: 0, empty: 0 };
    const queries = panelQueries().map((q) => ({ ...q, expr: substituteVariables(q.expr, VARIABLES) }));
    // Each engine evaluates its rules and scrapes on its own clock: VictoriaMetrics' answer must
    // match Prometheus's at some moment within 3 s of it.
    // Windows that lie wholly within the run, and whose series existed a window earlier too.
    await sleep(Math.max(0, lab.startedAt + (2 * RANGE_S + 12) * 1000 - Date.now()));
    const running = Math.floor(Date.now() / 1000) - 6;
    // Recording rules that read another recorded series: vmalert evaluates them on data it wrote
    // itself a moment before, which VictoriaMetrics may not show yet (docs/scaling-out.md); they may lag.
    const recorded = Object.values(rules).flatMap((t) => [...t.matchAll(/record: (\S+)/g)].map((m) => m[1]!));
    const chained = new Set(
      Object.values(rules).flatMap((t) =>
        [...t.matchAll(/record: (\S+)\n\s+expr: \|?([\s\S]*?)(?=\n\s+- (?:record|alert):|\n\s+- name:|$)/g)]
          .filter((m) => recorded.some((r) => r !== m[1] && m[2]!.includes(r)))
          .map((m) => m[1]!),
      ),
    );
    const lagging: string[] = [];
    for (const q of queries.filter((q) => SAMPLED.test(q.expr))) {
      // VictoriaMetrics cannot scrape the collector's retries while it is down itself: only Prometheus saw them.
      if (q.expr.includes(METRICS.collectorRemoteWriteRequests.name)) continue;
      // A window of 16 s holds about eight checks; the engines' edges differ by about one interval, and Prometheus extrapolates.
      const p = await compareQuery(q, running, { rel: 0.35, abs: 1e-9, buckets: bucketsOf(q.expr), promLagS: 3, olderThanS: RANGE_S + 2 });
      if (p?.includes('victoria   []') && chained.has(p.split('__name__=')[1]?.split(/[,"]/)[0] ?? '')) lagging.push(problems.pop()!.split(':')[0]!);
    }

    // vmalert writes a recorded series at every evaluation (1 s) with the 5m query step: at least
    // half of the last 10 s have a sample (the newest second may not be searchable yet).
    const recordedAt = Date.now();
    const recordedSeries = await vm.exportSeries('{__name__="side:mailprobe_dns_answer_side:authoritative_served"}');
    const recent = recordedSeries.map((s) => s.timestamps.filter((t) => t > recordedAt - 10_000).length);
    assert.ok(recent.length > 0 && recent.every((n) => n >= 5), `samples of a recorded series in the last 10 s: ${recent.join(', ')}`);

    // Quiet the world: the probes stop, the collector's queue drains, both stores hold the same results.
    await Promise.all(REGIONS.map((r) => lab!.stopProbe(r)));
    const stoppedAt = Date.now();
    await waitFor('the remote-write queue to drain', 10_000, async () => {
      const q = await lab!.registry.getSingleMetric(METRICS.collectorRemoteWriteQueue.name)?.get();
      return (q?.values[0]?.value ?? 1) === 0;
    });
    await sleep(4000); // scrapes and rule evaluations after the last sample, vmalert's flush
    // VictoriaMetrics takes a query's time in whole seconds, and makes what it ingests searchable within about a second.
    const at = Math.floor(Date.now() / 1000) - 2;

    // Series and values: every result series of the collector (as Prometheus scraped it) is in VictoriaMetrics with its value.
    const selector = `{__name__=~"${RESULT_RE}"}`;
    const [pr, vr] = [rows(await prom.query(selector, at)), rows(await vm.query(selector, at))];
    assert.ok(pr.length > 200, `${pr.length} result series`);
    assert.deepEqual(
      vr.map((r) => r[0]),
      pr.map((r) => r[0]),
      'the same result series',
    );
    // VictoriaMetrics keeps 12 significant digits of a float (a histogram's _sum): equal to 1e-9.
    const differ = compare(pr, vr, { rel: 1e-9, abs: 0 });
    assert.equal(differ, undefined, 'the same values');
    const written = await vm.exportSeries(`{__name__=~"${RESULT_RE}"}`);
    assert.ok(
      written.every((s) => s.metric.job === 'mailprobe-collector' && s.metric.instance === REPLICA),
      'results in VictoriaMetrics come only by remote write (job, replica)',
    );

    // Counters: never down; each rise at a check's own time; the checks made during the outage are there.
    // (The new MTA's certificate is refused from the start: the old IP's sessions succeed.)
    const counters = written.filter((s) => METRICS.smtpChecks.name === s.metric.__name__ && s.metric.result === 'success');
    assert.deepEqual(counters.map((s) => `${s.metric.probe}/${s.metric.ip}`).sort(), REGIONS.map((r) => `lab-${r}/${LAB_OLD_IP}`).sort());
    let during = 0;
    for (const s of counters) {
      const key = `${s.metric.probe}/${s.metric.ip}`;
      for (let i = 1; i < s.values.length; i++) assert.ok(s.values[i]! >= s.values[i - 1]!, `${key}: counter went down`);
      const rises = s.timestamps.filter((_t, i) => i === 0 || s.values[i]! > s.values[i - 1]!);
      assert.deepEqual(rises, tap.times.get(key), `${key}: a sample at each check time`);
      during += rises.filter((t) => t > outageFrom && t < outageTo).length;
    }
    // (Checks started while the receiver was down reached it later; on a loaded machine a probe may skip a beat, so counted over the fleet.)
    assert.ok(during >= 1, `checks made during the outage are in the store (${during})`);
    for (const t of [...tap.times.values()].flat()) assert.ok(t < stoppedAt);
    const dropped = await lab.registry.getSingleMetric(METRICS.collectorRemoteWriteDropped.name)?.get();
    assert.equal(dropped?.values.reduce((a, v) => a + v.value, 0) ?? 0, 0, 'nothing dropped');

    // Histograms: cumulative buckets, +Inf equal to _count, in every series.
    const hist = METRICS.smtpDuration.name;
    const buckets = rows(await vm.query(`${hist}_bucket`, at));
    const series = (k: string) => k.replace(/(?:^|,)(?:le|__name__)=[^,]+/g, '').replace(/^,/, '');
    const counts = new Map(rows(await vm.query(`${hist}_count`, at)).map(([k, v]) => [series(k), v]));
    assert.ok(counts.size >= 2 * REGIONS.length);
    const bySeries = new Map<string, [number, number][]>();
    for (const [k, v] of buckets) {
      const le = /(?:^|,)le=([^,]+)/.exec(k)?.[1] ?? '';
      const base = series(k);
      bySeries.set(base, [...(bySeries.get(base) ?? []), [le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), v]]);
    }
    assert.equal(bySeries.size, counts.size);
    for (const [base, bs] of bySeries) {
      bs.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < bs.length; i++) assert.ok(bs[i]![1] >= bs[i - 1]![1], `${base}: buckets are cumulative`);
      assert.equal(bs.at(-1)?.[0], Number.POSITIVE_INFINITY);
      assert.equal(bs.at(-1)?.[1], counts.get(base), `${base}: +Inf = _count`);
    }

    // Every other dashboard query once the world is still: exactly the same answer (sample times within the difference of a scrape and a check).
    // (vmalert writes no stale marker when an alert resolves: VictoriaMetrics answers ALERTS for as
    // long as its lookback; the alerts themselves were compared through vmalert's API above.)
    for (const q of queries.filter((q) => !SAMPLED.test(q.expr) && !q.expr.includes('ALERTS')))
      await compareQuery(q, at, /\btimestamp\(/.test(q.expr) ? { rel: 0, abs: 4 } : { rel: 1e-9, abs: 0 });
    console.log(
      `# dashboard queries on Prometheus and VictoriaMetrics: ${counted.exact} exact, ${counted.sampled} within the sampling difference, ${counted.empty} empty on both`,
    );
    if (lagging.length > 0) console.log(`# chained recording rules not yet in VictoriaMetrics (vmalert's lag): ${lagging.join('; ')}`);
    assert.deepEqual(problems, []);
    assert.ok(lagging.length <= 2, `at most two panels wait for a chained rule: ${lagging.join('; ')}`);
    assert.ok(counted.exact >= 25 && counted.sampled >= 15, `compared ${JSON.stringify(counted)}`);

    async function compareQuery(
      q: { dashboard: string; panel: string; refId: string; expr: string },
      time: number,
      tol: Tolerance,
    ): Promise<string | undefined> {
      // Only series older than the window: for a younger one VictoriaMetrics divides by the span
      // of its samples, Prometheus by the window (a failure class first seen a few seconds ago).
      const old = tol.olderThanS === undefined ? undefined : new Set(rows(await prom!.query(q.expr, time - tol.olderThanS)).map((r) => r[0]));
      const settled = (rs: Row[]) => (old ? rs.filter((r) => old.has(r[0])) : rs);
      const [b, a0] = await Promise.all([vm.query(q.expr, time).then(rows).then(settled), prom!.query(q.expr, time).then(rows).then(settled)]);
      let p: string | undefined;
      for (const lag of [0, ...Array.from({ length: tol.promLagS ?? 0 }, (_, i) => [i + 1, -i - 1]).flat()]) {
        const a = lag === 0 ? a0 : settled(rows(await prom!.query(q.expr, time + lag)));
        if (lag === 0 && a.length === 0 && b.length === 0) {
          counted.empty++;
          return undefined;
        }
        p = compare(a, b, tol);
        if (p === undefined) break;
      }
      if (tol.rel > 1e-9 || tol.abs > 0) counted.sampled++;
      else counted.exact++;
      if (p) problems.push(`${q.dashboard} / ${q.panel} / ${q.refId}: ${p}\n  ${q.expr}`);
      return p;
    }
  } finally {
    await lab?.stop();
    for (const stop of stops.reverse()) await stop();
  }
});

interface Tolerance {
  rel: number;
  abs: number;
  /**
   * A quantile's histogram buckets: the answers may lie up to two buckets apart (a window holds a
   * few observations; one more or less at its edge moves a p90 or p99 by a bucket or two).
   */
  buckets?: readonly number[];
  /** Also accept Prometheus's answer up to this many seconds earlier or later (each engine's own evaluation and scrape clock). */
  promLagS?: number;
  /** Compare only the series Prometheus already answered this many seconds earlier. */
  olderThanS?: number;
}

/** The buckets of the histogram a quantile query reads, or undefined for other queries. */
function bucketsOf(expr: string): readonly number[] | undefined {
  if (!/histogram_quantile|:quantile/.test(expr)) return undefined;
  const defs: readonly MetricDef[] = Object.values(METRICS);
  return defs.find((d) => d.type === 'histogram' && expr.includes(d.name))?.buckets;
}

const bucketIndex = (buckets: readonly number[], v: number) => {
  const i = buckets.findIndex((b) => v <= b + 1e-12);
  return i < 0 ? buckets.length : i;
};

function compare(a: Row[], b: Row[], tol: Tolerance): string | undefined {
  if (a.map((r) => r[0]).join('|') !== b.map((r) => r[0]).join('|'))
    return `series differ\n  prometheus ${JSON.stringify(a)}\n  victoria   ${JSON.stringify(b)}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]![1];
    const y = b[i]![1];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y || Math.abs(x - y) <= tol.abs || Math.abs(x - y) <= tol.rel * Math.max(Math.abs(x), Math.abs(y))) continue;
    if (tol.buckets && Math.abs(bucketIndex(tol.buckets, x) - bucketIndex(tol.buckets, y)) <= 2) continue;
    return `${a[i]![0]}: prometheus ${x}, victoria ${y}`;
  }
  return undefined;
}
