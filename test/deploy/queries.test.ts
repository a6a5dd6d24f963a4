/**
 * End to end on the Prometheus side: an HA pair of real collectors receives realistic batches of
 * every check type from two probes in two regions (each batch pushed to both, as probes do), a real Prometheus scrapes it every second with the deploy/
 * recording and alert rules loaded, and then every dashboard panel query and every rule
 * expression is evaluated through the HTTP API: none may fail, and every panel query must return
 * data.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { panelQueries, substituteVariables, type PanelQuery } from '../../grafana/index.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { DEPLOY_RULE_FILES, startTestPrometheus, type QueryData, type TestPrometheus } from '../../bench/lib/prometheus.js';
import { FIXTURE_PROBES, NEW_IP, probeBatch } from './fixtures.js';

const substitute = (expr: string) => substituteVariables(expr);

function size(d: QueryData): number {
  return d.resultType === 'vector' || d.resultType === 'matrix' ? d.result.length : 1;
}

let collectors: TestCollector[] = [];
let prom: TestPrometheus;
const t0 = Date.now();

before(async () => {
  const plan = testPlan();
  collectors = [await startTestCollector(plan), await startTestCollector(plan)];
  prom = await startTestPrometheus({ targets: collectors.map((c) => new URL(c.url).host) });
  // Round 0 before the first scrape, then a round after each further scrape, so every counter and
  // histogram grows between scrapes and rate() sees it. eu → new is greylisted in rounds 0 and 2.
  for (let round = 0; round < 4; round++) {
    for (const p of FIXTURE_PROBES) {
      const b = probeBatch(p, round);
      for (const c of collectors) {
        const r = await c.push(b);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    }
    await prom.waitForScrapes(1, 20_000);
  }
  // A push with a wrong token, as a misconfigured probe would send (feeds the rejections panel).
  const bad = await collectors[0]!.push(probeBatch(FIXTURE_PROBES[0]!, 9), { token: 'not-a-token' });
  assert.equal(bad.status, 401);
  await prom.waitForScrapes(2, 20_000);
  // Recording rules evaluated after the last scrape.
  await prom.waitFor(async () => (await prom.vector('region:mailprobe_dns_answer_side:ratio_new')).length === 2, 10_000, 'recording rules');
});

after(async () => {
  await prom?.stop();
  for (const c of collectors) await c.close();
});

test('Prometheus scrapes both collectors of the pair under the collector job', async () => {
  const up = await prom.vector('up{job="mailprobe-collector"}');
  assert.equal(up.length, 2);
  assert.ok(up.every((u) => u.value[1] === '1'));
  // Every probe series exists once per collector.
  assert.equal((await prom.vector('mailprobe_smtp_up{region="eu", side="new"}')).length, 2);
  console.log(`# prometheus ready and scraped 4 rounds in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test('every dashboard panel query evaluates without error and returns data', async () => {
  const queries = panelQueries();
  assert.ok(queries.length >= 40, `only ${queries.length} panel queries`);
  const empty: PanelQuery[] = [];
  let optional = 0;
  for (const q of queries) {
    const expr = substitute(q.expr);
    const d = await prom.query(expr); // throws PrometheusQueryError on a bad query
    // Panels of the optional rows (remote write, probes scraped directly) have nothing to show in
    // this setup: a collector without remote write, probes not scraped. They must still evaluate.
    if (q.optional !== undefined) optional++;
    else if (size(d) === 0) empty.push(q);
  }
  assert.ok(optional > 0 && optional < 15, `${optional} optional queries`);
  assert.deepEqual(
    empty.map((q) => `${q.dashboard} / ${q.panel} / ${q.refId}: ${q.expr}`),
    [],
    'panel queries without data',
  );
});

test('every panel query also works as a range query over the last minute', async () => {
  // Time series panels issue query_range; the step Grafana picks is at least the scrape interval.
  const end = Date.now() / 1000;
  for (const q of panelQueries().filter((x) => !x.instant)) {
    const qs = new URLSearchParams({ query: substitute(q.expr), start: String(end - 60), end: String(end), step: '5' });
    const r = await fetch(`${prom.url}/api/v1/query_range?${qs}`);
    const body = (await r.json()) as { status: string; error?: string };
    assert.equal(body.status, 'success', `${q.dashboard} / ${q.panel}: ${body.error}`);
  }
});

test('every recording and alert rule expression evaluates without error, and the rules are healthy', async () => {
  let n = 0;
  for (const file of DEPLOY_RULE_FILES) {
    const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: { expr: string; record?: string; alert?: string }[] }[] };
    for (const rule of doc.groups.flatMap((g) => g.rules)) {
      await prom.query(rule.expr);
      n++;
    }
  }
  assert.ok(n >= 30, `${n} rules`);
  const groups = await prom.ruleGroups();
  const bad = groups.flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
  assert.deepEqual(
    bad.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`),
    [],
  );
  assert.equal(groups.flatMap((g) => g.rules).length, n, 'Prometheus loaded every rule');
});

test('the recording rules compute the cutover figures from the pushed results', async () => {
  const value = async (expr: string) => {
    const v = await prom.vector(expr);
    assert.equal(v.length, 1, `${expr}: ${JSON.stringify(v)}`);
    return Number(v[0]?.value[1]);
  };
  // eu: system and 8.8.8.8 on new, 1.1.1.1 on old → 2/3; us: system on new, one both, one old → 1/3.
  assert.equal(await value('region:mailprobe_dns_answer_side:ratio_new{region="eu"}'), 2 / 3);
  assert.equal(await value('region:mailprobe_dns_answer_side:ratio_new{region="us"}'), 1 / 3);
  // One of three eu resolvers ignores the TTL; none in us.
  assert.equal(await value('region:mailprobe_dns_ttl_violation:ratio_honoured{region="eu"}'), 2 / 3);
  assert.equal(await value('region:mailprobe_dns_ttl_violation:ratio_honoured{region="us"}'), 1);
  assert.equal(await value('side:mailprobe_dns_answer_side:authoritative{side="new"}'), 1);
  // The pair is counted once: 2 eu resolvers on new, not 4; 2 probes, not 4.
  assert.equal(await value('region_side:mailprobe_dns_answer_side:count{region="eu", side="new"}'), 2);
  const probes = panelQueries().find((q) => q.dashboard === 'fleet.json' && q.panel === 'Probes');
  assert.equal(await value(substitute(probes?.expr ?? '')), 2);
  // Rates too: the deduplicated rate is about one collector's (they differ a little: each is
  // scraped at its own offset), not the sum of both. All evaluated at one instant.
  const at = Date.now() / 1000;
  const scalar = async (expr: string) => {
    const d = await prom.query(expr, at);
    assert.equal(d.resultType, 'vector');
    return d.resultType === 'vector' ? d.result.map((x) => Number(x.value[1])) : [];
  };
  const perInstance = await scalar('sum by (instance) (rate(mailprobe_smtp_checks_total[5m]))');
  assert.equal(perInstance.length, 2);
  const [dedup] = await scalar('sum(max without (instance) (rate(mailprobe_smtp_checks_total[5m])))');
  const both = perInstance.reduce((a, b) => a + b, 0);
  assert.ok(dedup !== undefined && dedup >= Math.min(...perInstance) && dedup < 0.75 * both, `${dedup} vs ${perInstance.join(', ')}`);
  // eu → new: greylisted in rounds 0 and 2; rate() sees rounds 1 to 3, one of them failed.
  const euNew = await value(`region_ip:mailprobe_smtp_checks_total:ratio_success_rate5m{region="eu", ip="${NEW_IP}"}`);
  assert.ok(euNew > 0.5 && euNew < 0.8, `eu → new success ratio ${euNew}`);
  const greylisted = await value(`region_ip_result:mailprobe_smtp_checks_total:rate5m{region="eu", ip="${NEW_IP}"}`);
  assert.ok(greylisted > 0, 'temp_fail rate');
  assert.equal((await prom.vector(`region_ip_result:mailprobe_smtp_checks_total:rate5m{result="temp_fail"}`))[0]?.metric.result, 'temp_fail');
  assert.equal(await value(`region_ip:mailprobe_smtp_checks_total:ratio_success_rate5m{region="us", ip="${NEW_IP}"}`), 1);
  const p90 = await value(`region_ip_phase:mailprobe_smtp_duration_seconds:quantile_rate5m{region="us", ip="${NEW_IP}", phase="rcpt", quantile="0.9"}`);
  // rcpt takes 0.022–0.03 s: the p90 falls in the (0.025, 0.05] bucket.
  assert.ok(p90 > 0.025 && p90 <= 0.05, `rcpt p90 ${p90}`);
});

test('alerts for the injected faults: a lost round trip fires, the resolver ignoring the TTL is pending once (for: 5m)', async () => {
  await prom.waitFor(
    async () => {
      const alerts = await prom.alerts();
      return (
        alerts.some((a) => a.labels.alertname === 'MailprobeRoundtripLost' && a.state === 'firing') &&
        alerts.some((a) => a.labels.alertname === 'MailprobeResolverIgnoringTTL')
      );
    },
    10_000,
    'MailprobeRoundtripLost firing and MailprobeResolverIgnoringTTL pending',
  );
  const alerts = await prom.alerts();
  // One alert per resolver, whichever probes saw it: no region or probe label.
  const ttl = alerts.filter((a) => a.labels.alertname === 'MailprobeResolverIgnoringTTL');
  assert.deepEqual(
    ttl.map((a) => [a.labels.resolver, a.labels.region, a.labels.probe, a.state]),
    [['1.1.1.1', undefined, undefined, 'pending']],
  );
  // The test plan's window is open: the lost round trip pages; nothing else does (every check of
  // the served IPs succeeded in the last round; the eu greylisting ratio is at most pending).
  assert.deepEqual(
    alerts.filter((a) => a.labels.severity === 'critical' && a.state === 'firing').map((a) => `${a.labels.alertname} ${a.labels.via_ip}`),
    [`MailprobeRoundtripLostInWindow ${NEW_IP}`],
  );
});

test('the variable substitution covers every variable the dashboards use', () => {
  for (const q of panelQueries()) assert.doesNotThrow(() => substitute(q.expr), q.expr);
  assert.throws(() => substitute('x{a="$nope"}'), /unknown Grafana variable/);
});
