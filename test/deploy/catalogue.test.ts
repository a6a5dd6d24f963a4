/**
 * Metric names only from the catalogue (protocol/metrics.ts): every `mailprobe_` name in the rules,
 * the rule unit tests and the dashboards is a catalogue metric (histograms with their _bucket, _sum
 * and _count series).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { METRICS, METRIC_LIST, type MetricKey } from '../../protocol/metrics.js';
import { renderDashboards } from '../../grafana/index.js';

const root = resolve(import.meta.dirname, '../..');

const known = new Set<string>();
for (const d of METRIC_LIST) {
  known.add(d.name);
  if (d.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) known.add(d.name + s);
}

/** Metric names in a text: `mailprobe_…` not preceded by a word character, `:`, `-` or `/`. */
function metricNames(text: string): string[] {
  return [...new Set(text.match(/(?<![\w:/-])mailprobe_[a-z0-9_]+/g) ?? [])];
}

/** The source metric of recording-rule names (level:metric:operation). */
function recordedSources(text: string): string[] {
  return [...new Set([...text.matchAll(/[a-z_]+:(mailprobe_[a-z0-9_]+):[a-z0-9_]+/g)].map((x) => x[1] ?? ''))];
}

const sources: [string, string][] = [
  ...['deploy/prometheus/rules', 'deploy/prometheus/tests'].flatMap((d) =>
    readdirSync(join(root, d))
      .filter((f) => f.endsWith('.yml'))
      .map((f): [string, string] => [`${d}/${f}`, readFileSync(join(root, d, f), 'utf8')]),
  ),
  ...[...renderDashboards()].map(([f, text]): [string, string] => [`grafana/dashboards/${f}`, text]),
];

test('every mailprobe_ metric in rules, rule tests and dashboards is in the catalogue', () => {
  let seen = 0;
  for (const [file, text] of sources) {
    for (const name of [...metricNames(text), ...recordedSources(text)]) {
      seen++;
      assert.ok(known.has(name), `${file}: ${name} is not in protocol/metrics.ts`);
    }
  }
  assert.ok(seen > 50, `only ${seen} names found: the scan is broken`);
});

test('the scan finds names and rejects unknown ones', () => {
  assert.deepEqual(metricNames('rate(mailprobe_smtp_checks_total[5m]) / x:mailprobe_smtp_up:y and mailprobe_nope'), [
    'mailprobe_smtp_checks_total',
    'mailprobe_nope',
  ]);
  assert.ok(!known.has('mailprobe_nope'));
  assert.deepEqual(recordedSources('region:mailprobe_dns_answer_side:ratio_new'), ['mailprobe_dns_answer_side']);
});

/** The metrics of the catalogue (protocol/metrics.ts) and the collector's health: each must be read by a rule or a panel. */
const OBSERVED: readonly MetricKey[] = [
  'smtpDuration',
  'smtpChecks',
  'smtpUp',
  'tlsCertExpiry',
  'tlsCertValid',
  'dnsLookupDuration',
  'dnsLookups',
  'dnsAnswerSide',
  'dnsTtl',
  'dnsResolverStale',
  'dnsTtlViolation',
  'dnsTtlExtension',
  'safeToSwitch',
  'safeToDecommission',
  'fcrdnsOk',
  'fcrdnsOkWhenServed',
  'ptrInfo',
  'serverInfo',
  'ptrMatchesMailHost',
  'spfPass',
  'dkimKeyPresent',
  'dmarcPresent',
  'dnsblListed',
  'dnsTtlTested',
  'smtpSessionDuration',
  'mtaStsOk',
  'tlsaPresent',
  'tlsaMatch',
  'dnsblErrors',
  'roundtripDuration',
  'roundtrips',
  'roundtripAuth',
  'inboxDuration',
  'inboxes',
  'inboxAuth',
  'checks',
  'probeLastPush',
  'probeSpoolBytes',
  'probeSpoolDropped',
  'cutoverWindowActive',
  'cutoverWindowStart',
  'cutoverWindowEnd',
  'collectorBatches',
  'collectorRejections',
  'collectorResults',
  'collectorSeries',
  'collectorIngestDuration',
];

test('every metric of the catalogue and the collector health is read by a rule or a dashboard', () => {
  const used = new Set(
    sources
      .filter(([f]) => !f.includes('/tests/'))
      .flatMap(([, t]) => [...metricNames(t), ...recordedSources(t)])
      .map((n) => n.replace(/_(bucket|sum|count)$/, '')),
  );
  const unused = OBSERVED.map((k) => METRICS[k].name).filter((n) => !used.has(n));
  assert.deepEqual(unused, []);
});
