/**
 * The dashboards as code: the committed JSON is what the code builds, every dashboard has the
 * panels the cutover needs, queries use the provisioned datasource and recorded rules that exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { DASHBOARDS, annotationQueries, panelQueries, renderDashboards, variableQueries } from '../../grafana/index.js';
import { ANNOTATIONS, PROVISIONED_DATASOURCE_UID, RECORDED } from '../../grafana/common.js';
import { METRICS } from '../../protocol/metrics.js';

const root = resolve(import.meta.dirname, '../..');

/** Every panel, rows and the panels inside them included. */
function allPanels(d: dashboard.Dashboard): (dashboard.Panel | dashboard.RowPanel)[] {
  return (d.panels ?? []).flatMap((p) => (p.type === 'row' ? [p, ...(p as dashboard.RowPanel).panels] : [p]));
}
const dir = join(root, 'grafana/dashboards');

test('the committed dashboard JSON is up to date (npm run dashboards)', () => {
  const rendered = renderDashboards();
  const committed = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  assert.deepEqual(committed, [...rendered.keys()].sort(), 'files in grafana/dashboards');
  for (const [file, text] of rendered) {
    assert.equal(readFileSync(join(dir, file), 'utf8'), text, `grafana/dashboards/${file} is stale: run npm run dashboards`);
  }
});

test('each dashboard has a unique uid, unique panel ids and the datasource variable', () => {
  const uids = new Set<string>();
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    const d = build();
    assert.ok(d.uid && !uids.has(d.uid), `${file}: uid`);
    uids.add(d.uid);
    const ids = allPanels(d).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: panel ids`);
    assert.ok(
      ids.every((id) => typeof id === 'number' && id > 0),
      `${file}: panel ids set`,
    );
    const ds = d.templating?.list?.find((v) => v.name === 'datasource');
    assert.equal(ds?.type, 'datasource', `${file}: datasource variable`);
    assert.equal((ds?.current as { value?: string } | undefined)?.value, PROVISIONED_DATASOURCE_UID);
  }
});

test('the dashboards carry the panels the cutover needs', () => {
  const titles = (file: string) =>
    new Set(
      panelQueries()
        .filter((q) => q.dashboard === file)
        .map((q) => q.panel),
    );
  const want: Record<string, string[]> = {
    'cutover.json': [
      'Phase',
      'Window',
      'Readiness of the new server',
      'Reverse DNS per server IP',
      'Resolvers on the new IP',
      'Resolvers honouring the TTL',
      'Resolvers honouring the TTL per region',
      'TTL behaviour of resolvers',
      'Safe to switch',
      'Safe to turn the old server off',
      'MTA-STS and TLSA',
      'Blocklist lookups failing',
    ],
    'delivery.json': [
      'Latency quantiles of phase $phase',
      'Latency of phase $phase to $ip',
      'Session latency per destination IP',
      'Delivery success ratio',
      'Failures by class',
      'Phase breakdown',
    ],
    'roundtrip.json': ['Round-trip latency by delivering IP', 'Lost messages in the time range', 'Receiver verdicts of the last message per delivering IP'],
    'resolvers.json': ['Answer side per resolver', 'Remaining TTL per resolver', 'Resolvers ignoring the TTL', 'Stale seconds per resolver'],
    'fleet.json': ['Probes', 'Since the last push', 'Spool depth', 'Collectors up', 'Batches per minute by result'],
  };
  for (const [file, panels] of Object.entries(want)) {
    const have = titles(file);
    for (const p of panels) assert.ok(have.has(p), `${file}: panel "${p}"`);
  }
  // The readiness checklist has one query per item, each on its own metric, and each metric is a
  // yes/no gauge of the catalogue (its help says "1 if …"), so the OK/FAIL mapping reads it right.
  const items = panelQueries().filter((q) => q.panel === 'Readiness of the new server');
  const itemMetrics = items.map((q) => [...new Set(q.expr.match(/\bmailprobe_[a-z_]+/g))]);
  for (const [i, m] of itemMetrics.entries()) assert.equal(m.length, 1, `one metric per item: ${items[i]?.expr}`);
  assert.equal(new Set(itemMetrics.flat()).size, items.length, `one item per metric: ${itemMetrics.flat().join(', ')}`);
  const catalogue = new Map(Object.values(METRICS).map((d) => [d.name as string, d]));
  for (const name of itemMetrics.flat()) {
    const d = catalogue.get(name);
    assert.equal(d?.type, 'gauge', `${name} is a gauge of the catalogue`);
    assert.match(d?.help ?? '', /^1 if /, `${name} is a yes/no gauge`);
  }
  // Optional rows are marked with what they need.
  const optional = panelQueries().filter((q) => q.optional !== undefined);
  assert.deepEqual([...new Set(optional.map((q) => q.optional))].length, 2);
  assert.ok(optional.some((q) => q.expr.includes('mailprobe_collector_remote_write_queue_samples')));
  // The heatmap reads buckets in heatmap format.
  const heat = panelQueries().find((q) => q.panel === 'Latency of phase $phase to $ip');
  assert.equal(heat?.format, 'heatmap');
  assert.match(heat?.expr ?? '', /_bucket\{/);
});

test('panel queries use the datasource variable and have distinct refIds per panel', () => {
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    for (const p of allPanels(build())) {
      if (p.type === 'row') continue;
      const targets = (p as { targets?: { refId?: string; datasource?: { uid?: string } }[] }).targets ?? [];
      assert.ok(targets.length > 0, `${file}/${p.title}: no query`);
      assert.equal(new Set(targets.map((t) => t.refId)).size, targets.length, `${file}/${p.title}: refIds`);
      for (const t of targets) assert.equal(t.datasource?.uid, '${datasource}', `${file}/${p.title}`);
    }
  }
});

test('every recording rule the dashboards read is defined in deploy/prometheus/rules', () => {
  const text = readFileSync(join(root, 'deploy/prometheus/rules/mailprobe-recording.yml'), 'utf8');
  const records = new Set((parse(text) as { groups: { rules: { record?: string }[] }[] }).groups.flatMap((g) => g.rules.map((r) => r.record)));
  for (const name of Object.values(RECORDED)) assert.ok(records.has(name), `${name} is not recorded`);
  // And the queries use nothing else of the form level:metric:operation.
  for (const q of panelQueries()) {
    for (const used of q.expr.match(/[a-z_]+:mailprobe_[a-z0-9_]+:[a-z0-9_]+/g) ?? []) {
      assert.ok(records.has(used), `${q.dashboard}/${q.panel}: ${used} is not recorded`);
    }
  }
});

test('variables are label_values queries over catalogue metrics', () => {
  const vars = variableQueries();
  assert.ok(vars.length >= 5);
  for (const v of vars) assert.match(v.query, /^label_values\(mailprobe_[a-z_]+, [a-z_]+\)$/, `${v.dashboard}: ${v.name}`);
});

test('provisioning: the datasource uid matches the dashboards, the dashboard provider is a file provider', () => {
  const ds = parse(readFileSync(join(root, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
    apiVersion: number;
    datasources: { uid: string; type: string }[];
  };
  assert.equal(ds.apiVersion, 1);
  assert.deepEqual(
    ds.datasources.map((d) => [d.uid, d.type]),
    [[PROVISIONED_DATASOURCE_UID, 'prometheus']],
  );
  const db = parse(readFileSync(join(root, 'grafana/provisioning/dashboards/mailprobe.yml'), 'utf8')) as {
    providers: { type: string; options: { path: string } }[];
  };
  assert.equal(db.providers[0]?.type, 'file');
  assert.ok(db.providers[0]?.options.path.startsWith('/'));
});

test('every panel has a unit', () => {
  const missing: string[] = [];
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    for (const p of allPanels(build())) {
      if (p.type === 'row') continue;
      const unit = (p as dashboard.Panel).fieldConfig?.defaults?.unit;
      if (typeof unit !== 'string' || unit === '') missing.push(`${file}/${p.title}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('every dashboard links to the others, keeping time and variables, and marks the window and the switch', () => {
  const tagged = Object.values(DASHBOARDS).filter((b) => b().tags?.includes('mailprobe')).length;
  assert.equal(tagged, Object.keys(DASHBOARDS).length, 'the links find dashboards by the mailprobe tag');
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    const links = build().links ?? [];
    assert.deepEqual(
      links.map((l) => [l.type, l.tags, l.keepTime, l.includeVars]),
      [['dashboards', ['mailprobe'], true, true]],
      `${file}: links`,
    );
    assert.deepEqual(
      annotationQueries()
        .filter((a) => a.dashboard === file)
        .map((a) => a.name),
      ANNOTATIONS.map((a) => a.name),
      `${file}: annotations`,
    );
  }
});

test('probe and resolver variables select the raw per-probe and per-resolver series', () => {
  const names = (file: string) => (DASHBOARDS[file]?.().templating?.list ?? []).map((v) => v.name);
  for (const file of ['delivery.json', 'resolvers.json', 'roundtrip.json', 'fleet.json']) assert.ok(names(file).includes('probe'), `${file}: probe variable`);
  assert.ok(names('resolvers.json').includes('resolver'));
  const raw = panelQueries().filter((q) => q.dashboard === 'resolvers.json' && /(?<![:\w])mailprobe_dns_/.test(q.expr));
  assert.ok(raw.length >= 6);
  for (const q of raw) assert.match(q.expr, /probe=~"\$probe", resolver=~"\$resolver"/, `${q.panel}`);
});
