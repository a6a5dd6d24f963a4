import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, loadPlan, parsePlan, planJsonSchema } from '../../config/load.js';
import { parseDuration, parseSize } from '../../config/schema.js';

const dir = new URL('./fixtures/invalid/', import.meta.url);

test('the example plan is valid, with defaults filled and durations in ms', async () => {
  const plan = await loadPlan(new URL('../../examples/plan.yaml', import.meta.url).pathname);
  assert.equal(plan.cutover.mail_host, 'mail.company.com');
  assert.equal(plan.probes.interval, 60_000);
  assert.equal(plan.probes.window_interval, 15_000);
  assert.equal(plan.probes.timeout, 10_000);
  assert.equal(plan.probes.push.spool_max_bytes, 64 * 1024 * 1024);
  assert.equal(plan.collector.body_limit, 1024 * 1024);
  assert.equal(plan.probes.smtp.mode, 'rcpt');
  assert.ok(Object.isFrozen(plan) && Object.isFrozen(plan.cutover.servers[0]));
});

for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  test(`invalid plan ${file} is rejected with its message`, () => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    const expected = /^# expect: (.*)$/m.exec(text)?.[1];
    assert.ok(expected, 'fixture names its expected message');
    assert.throws(
      () => parsePlan(text, file),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.ok(
          err.problems.some((p) => p.startsWith(expected)),
          `expected a problem starting with\n  ${expected}\ngot\n  ${err.problems.join('\n  ')}`,
        );
        assert.match(err.message, new RegExp(`^${file}: invalid plan`));
        return true;
      },
    );
  });
}

test('every problem is reported at once, each naming its path', () => {
  const text = readFileSync(new URL('bad-ip.yaml', dir), 'utf8').replace('side: old', 'side: sideways').replace('interval: 60s', 'interval: soon');
  assert.throws(
    () => parsePlan(text),
    (err: unknown) => err instanceof ConfigError && err.problems.length === 3,
  );
});

test('an unreadable file is a ConfigError naming the file', async () => {
  await assert.rejects(loadPlan('/nonexistent/plan.yaml'), /\/nonexistent\/plan\.yaml: invalid plan\n {2}- \(file\) cannot read: ENOENT/);
});

test('durations and sizes parse', () => {
  assert.equal(parseDuration('15s'), 15_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseSize('64MiB'), 67_108_864);
  assert.equal(parseSize('512KiB'), 524_288);
  assert.equal(parseSize(1000), 1000);
});

test('the JSON Schema for editors describes the plan', () => {
  const s = planJsonSchema() as { properties: Record<string, unknown>; title: string };
  assert.deepEqual(Object.keys(s.properties), ['cutover', 'probes', 'collector']);
  assert.equal(s.title, 'mailprobe cutover plan');
});
