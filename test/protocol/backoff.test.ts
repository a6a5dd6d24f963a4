// The shared retry schedule (protocol/backoff.ts) of the pusher and remote write: doubling from
// the minimum, capped at the maximum, jittered to 50–100 % of that.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { backoff } from '../../protocol/backoff.js';

test('doubles from the minimum per attempt up to the maximum', () => {
  const most = () => 1;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => backoff(n, 200, 5000, most)),
    [200, 400, 800, 1600, 3200, 5000, 5000],
  );
  assert.equal(backoff(0, 200, 5000, most), 200, 'attempt 0 counts as the first');
  assert.equal(backoff(10_000, 200, 5000, most), 5000, 'a long outage stays at the maximum');
});

test('jitter takes 50–100 % of the step, never above the maximum', () => {
  const least = () => 0;
  const half = () => 0.5;
  assert.equal(backoff(3, 200, 5000, least), 400);
  assert.equal(backoff(3, 200, 5000, half), 600);
  assert.equal(backoff(20, 200, 5000, least), 2500);
  for (let i = 0; i < 200; i++) {
    const d = backoff(1 + (i % 12), 100, 3000);
    assert.ok(d >= 50 && d <= 3000, `${d} ms`);
  }
});
