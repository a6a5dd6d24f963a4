/**
 * The Prometheus side of deploy/: promtool checks the config and the rules and runs the rule unit
 * tests; every alert must have a case that fires and one that does not, and a runbook section.
 * (The Alertmanager configuration is tested in alertmanager.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { deployRulesOf, type DeployRule as Rule } from '../../bench/lib/prometheus.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const prom = join(root, 'deploy/prometheus');
const ruleFiles = readdirSync(join(prom, 'rules'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(prom, 'rules', f));
const testFiles = readdirSync(join(prom, 'tests'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(prom, 'tests', f));

interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[];
}
interface TestFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: AlertCase[] }[];
}

function rules(): Rule[] {
  return ruleFiles.flatMap(deployRulesOf);
}

/** Runs a tool and returns its exit code and output (a non-zero exit is not an exception here). */
async function tool(cmd: string, args: string[], cwd = root): Promise<{ code: number; out: string }> {
  try {
    const r = await run(cmd, args, { cwd });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

test('promtool check config accepts deploy/prometheus/prometheus.yml and finds its rule files', async () => {
  const r = await tool('promtool', ['check', 'config', join(prom, 'prometheus.yml')]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`SUCCESS: ${ruleFiles.length} rule files found`));
});

test('promtool check rules accepts every rules file', async () => {
  const r = await tool('promtool', ['check', 'rules', ...ruleFiles]);
  assert.equal(r.code, 0, r.out);
});

test('promtool test rules passes every unit test file', async () => {
  assert.ok(testFiles.length >= 2);
  const r = await tool('promtool', ['test', 'rules', ...testFiles], join(prom, 'tests'));
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /FAILED/);
});

test('promtool test rules fails when an expectation is wrong (the unit tests can fail)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-rules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(prom, 'rules'), join(dir, 'rules'), { recursive: true });
  const original = readFileSync(join(prom, 'tests/alerts.test.yml'), 'utf8');
  const text = original.replace('severity: critical, job: mailprobe-collector, region: eu', 'severity: warning, job: mailprobe-collector, region: eu');
  // Only the test group with the wrong expectation (the others pass, and take promtool seconds).
  const before = (parse(original) as TestFile).tests;
  const changed = parse(text.replaceAll('../rules/', 'rules/')) as TestFile;
  changed.tests = changed.tests.filter((g, i) => JSON.stringify(g) !== JSON.stringify(before[i]));
  assert.equal(changed.tests.length, 1, 'the wrong expectation is in one test group');
  writeFileSync(join(dir, 'tests.yml'), stringify(changed));
  const r = await tool('promtool', ['test', 'rules', 'tests.yml'], dir);
  assert.notEqual(r.code, 0);
  assert.match(r.out, /MailprobeDeliveryFailingServedIP/);
});

test('every alert has severity, summary and description, and a firing and a quiet test case', () => {
  const alerts = rules().filter((r) => r.alert !== undefined);
  assert.ok(alerts.length >= 14, `only ${alerts.length} alerts`);
  const cases = testFiles.flatMap((f) => (parse(readFileSync(f, 'utf8')) as TestFile).tests.flatMap((t) => t.alert_rule_test ?? []));
  for (const a of alerts) {
    assert.ok(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${a.alert}: severity`);
    assert.ok((a.annotations?.summary ?? '').length > 0, `${a.alert}: summary`);
    assert.ok((a.annotations?.description ?? '').length > 0, `${a.alert}: description`);
    const mine = cases.filter((c) => c.alertname === a.alert);
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `${a.alert}: no test case where it fires`,
    );
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `${a.alert}: no test case where it stays quiet`,
    );
  }
  // No test case names an alert that does not exist.
  const names = new Set(alerts.map((a) => a.alert));
  for (const c of cases) assert.ok(names.has(c.alertname), `test case for unknown alert ${c.alertname}`);
});

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

test('every alert has a runbook_url to its own section of docs/runbook.md, and the runbook links resolve', () => {
  const text = readFileSync(join(root, 'docs/runbook.md'), 'utf8');
  const anchors = new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => headingAnchor(m[1] ?? '')));
  const alerts = rules().filter((r) => r.alert !== undefined);
  const missing: string[] = [];
  for (const a of alerts) {
    const url = a.annotations?.runbook_url ?? '';
    const m = /^docs\/runbook\.md#(.+)$/.exec(url);
    if (!m || !anchors.has(m[1] ?? '')) missing.push(`${a.alert}: runbook_url "${url}"`);
    // Its own section: the heading is the alert name.
    else assert.equal(m[1], headingAnchor(a.alert ?? ''), `${a.alert}: runbook_url points to another section`);
  }
  assert.deepEqual(missing, [], 'alerts without a runbook section');
  // Each section says what it means, what to check and what to do.
  for (const section of text.split(/^## /m).slice(1)) {
    const name = section.split('\n')[0] ?? '';
    for (const part of ['**Means:**', '**Check:**', '**Do:**']) assert.ok(section.includes(part), `docs/runbook.md ${name}: no ${part}`);
  }
  for (const link of text.matchAll(/\]\(#([^)]+)\)/g)) assert.ok(anchors.has(link[1] ?? ''), `docs/runbook.md: broken link #${link[1]}`);
  assert.equal(headingAnchor('MailprobeRoundtripLost'), 'mailproberoundtriplost');
});

test('delivery to the served IP pages inside the window and warns outside it', () => {
  const byName = new Map(rules().map((r) => [r.alert ?? r.record, r]));
  const page = byName.get('MailprobeDeliveryFailingServedIP');
  const warn = byName.get('MailprobeDeliveryFailingServedIPOutsideWindow');
  assert.equal(page?.labels?.severity, 'critical');
  assert.match(page?.expr ?? '', /and on \(\) mailprobe_cutover_window_active == 1/);
  assert.equal(warn?.labels?.severity, 'warning');
  assert.match(warn?.expr ?? '', /unless on \(\) mailprobe_cutover_window_active == 1/);
});
