/**
 * `mailprobe report`'s own errors, as a user meets them: a time it cannot read and a Prometheus
 * it cannot reach each end with one line naming the problem and exit 1, never a stack trace.
 * The report itself is tested against a real Prometheus in test/e2e/status-report-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTime } from '../../cli/report.js';

const root = new URL('../../', import.meta.url).pathname;
const report = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), 'report', ...args], { encoding: 'utf8', timeout: 60_000 });

test('times: RFC 3339, Unix seconds and now-<duration>', () => {
  const now = Date.parse('2026-12-05T03:00:00Z');
  assert.equal(parseTime('2026-12-04T19:00:00Z', now), Date.parse('2026-12-04T19:00:00Z') / 1000);
  assert.equal(parseTime('1796000000', now), 1796000000);
  assert.equal(parseTime('now-2h', now), now / 1000 - 7200);
  assert.equal(parseTime('now', now), now / 1000);
  assert.throws(() => parseTime('yesterday', now), /"yesterday" is not a time: use RFC 3339/);
});

test('a bad time or an unreachable Prometheus: one line, exit 1', () => {
  const bad = report('--prometheus', 'http://127.0.0.1:1', '--from', 'yesterday');
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'mailprobe report: "yesterday" is not a time: use RFC 3339 (2026-12-04T19:00:00Z), Unix seconds or now-2h\n');
  const down = report('--prometheus', 'http://127.0.0.1:1', '--from', 'now-1h', '--out', '/nonexistent-never-written');
  assert.equal(down.status, 1);
  assert.match(down.stderr, /^mailprobe report: cannot reach Prometheus at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED.*\n$/);
  const help = report('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: mailprobe report --prometheus URL --from TIME --to TIME \[--out DIR\]/);
});
