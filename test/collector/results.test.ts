/**
 * POST /v1/results against a real collector on loopback: every bad input gets the right status
 * and a reason, and nothing it carried reaches the exposition.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import type { SmtpResult } from '../../protocol/results.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { batchOf, mixedResults, NEW_IP } from '../support/results.js';
import { Ajv } from 'ajv';
import { Value } from '@sinclair/typebox/value';
import { Batch } from '../../protocol/wire.js';
import { CHECK_DEFS, type CheckType } from '../../protocol/checks/index.js';
import { wireBodySchema } from '../../collector/plugins/results.js';

let c: TestCollector;
before(async () => {
  c = await startTestCollector(testPlan({ collector: { body_limit: '64KiB', max_series_per_probe: 500, dedup_batches: 3 } }));
});
after(() => c.close());

const smtp = (): SmtpResult => mixedResults().find((r): r is SmtpResult => r.type === 'smtp')!;
const dns = () => mixedResults().find((r) => r.type === 'dns')!;
const accepted = () => c.sample('mailprobe_collector_batches_total', { result: 'accepted' });

/** Runs fn and asserts the result series of the exposition did not change. */
async function unchanged(fn: () => Promise<void>) {
  const data = (t: string) =>
    t
      .split('\n')
      .filter((l) => l.startsWith('mailprobe_') && !l.startsWith('mailprobe_collector_'))
      .join('\n');
  const before = data(await c.scrape());
  await fn();
  assert.equal(data(await c.scrape()), before, 'the exposition of results did not change');
}

test('a valid batch of every check type is accepted, a retry counted once', async () => {
  const b = batchOf(mixedResults());
  const first = await c.push(b);
  assert.equal(first.status, 200);
  assert.deepEqual(first.body, { status: 'accepted', results: b.results.length });
  const labels = { probe: 'p-eu', ip: NEW_IP, result: 'success' };
  const checks = await c.sample('mailprobe_smtp_checks_total', labels);
  assert.equal(checks, 1);
  const again = await c.push(b);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, { status: 'duplicate', results: b.results.length });
  assert.equal(await c.sample('mailprobe_smtp_checks_total', labels), 1);
  assert.equal(await c.sample('mailprobe_collector_batches_total', { result: 'duplicate' }), 1);
});

test('malformed JSON → 400 bad_json', async () => {
  await unchanged(async () => {
    const r = await c.push('{"probe": ');
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'bad_json');
  });
});

test('wrong schema → 400 invalid_batch naming the field', async () => {
  await unchanged(async () => {
    const r = await c.push(batchOf([{ ...smtp(), port: 'twenty-five' } as never]));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_batch');
    assert.match(String(r.body.message), /results\.0\.port/);
  });
});

test('unknown field → 400 unknown_field naming it, in a result and in the envelope', async () => {
  await unchanged(async () => {
    const r = await c.push(batchOf([{ ...smtp(), surprise: 1 } as never]));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'unknown_field');
    assert.match(String(r.body.message), /unknown field "surprise"/);
    const r2 = await c.push({ ...batchOf([]), extra: true } as never);
    assert.equal(r2.status, 400);
    assert.equal(r2.body.error, 'unknown_field');
  });
});

test('an unknown result type → 400 invalid_batch', async () => {
  await unchanged(async () => {
    const r = await c.push(batchOf([{ ...smtp(), type: 'carrier-pigeon' } as never]));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_batch');
  });
});

test('oversized body → 413 body_too_large', async () => {
  await unchanged(async () => {
    const big = batchOf(Array.from({ length: 400 }, () => smtp()));
    assert.ok(JSON.stringify(big).length > 64 * 1024);
    const r = await c.push(big);
    assert.equal(r.status, 413);
    assert.equal(r.body.error, 'body_too_large');
  });
});

test('missing, unknown and non-bearer tokens → 401', async () => {
  await unchanged(async () => {
    for (const token of [null, '', 'wrong-token']) {
      const r = await c.push(batchOf([smtp()]), { token });
      assert.equal(r.status, 401, `token ${String(token)}`);
      assert.equal(r.body.error, 'unauthorized');
    }
    const basic = await request(`${c.url}/v1/results`, {
      method: 'POST',
      headers: { authorization: 'Basic Zm9vOmJhcg==', 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(basic.statusCode, 401);
    await basic.body.dump();
  });
});

test("a token used for another probe's id → 403 probe_mismatch", async () => {
  await unchanged(async () => {
    const r = await c.push(batchOf([smtp()], { id: 'p-us', region: 'us' }), { token: 'token-p-eu' });
    assert.equal(r.status, 403);
    assert.equal(r.body.error, 'probe_mismatch');
  });
});

test('wrong content type → 415 unsupported_media_type', async () => {
  await unchanged(async () => {
    const r = await c.push(JSON.stringify(batchOf([smtp()])), { contentType: 'text/plain' });
    assert.equal(r.status, 415);
    assert.equal(r.body.error, 'unsupported_media_type');
  });
});

test('label values with quotes, backslashes, newlines and non-ASCII are escaped in the exposition', async () => {
  const nasty = 'rés"ol\\ver\nnew-line ☃';
  const r = await c.push(batchOf([{ ...dns(), resolver: nasty }]));
  assert.equal(r.status, 200);
  const text = await c.scrape();
  assert.ok(text.includes('resolver="rés\\"ol\\\\ver\\nnew-line ☃"'), 'escaped per the exposition format');
  assert.ok(!text.split('\n').some((l) => l.startsWith('new-line')), 'no line broken by the newline');
});

test('long label values are cut to collector.max_label_length', async () => {
  const r = await c.push(batchOf([{ ...dns(), resolver: 'x'.repeat(250) }]));
  assert.equal(r.status, 200);
  const text = await c.scrape();
  assert.ok(text.includes(`resolver="${'x'.repeat(128)}"`));
  assert.ok(!text.includes('x'.repeat(129)));
});

test('100 000 distinct resolvers from one probe hit the series limit: 422, counted, series bounded', async () => {
  const acceptedBefore = (await accepted()) ?? 0;
  const rejectionsBefore = (await c.sample('mailprobe_collector_rejections_total', { code: 'series_limit' })) ?? 0;
  let rejected = 0;
  let ok = 0;
  for (let start = 0; start < 100_000; start += 100) {
    const results = Array.from({ length: 100 }, (_, i) => {
      const n = start + i;
      return { ...dns(), resolver: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` };
    });
    const r = await c.push(batchOf(results, { id: 'p-ap', region: 'ap' }));
    if (r.status === 200) ok++;
    else {
      assert.equal(r.status, 422);
      assert.equal(r.body.error, 'series_limit');
      rejected++;
    }
  }
  assert.equal(ok + rejected, 1000);
  assert.ok(ok >= 1 && rejected >= 990, `accepted ${ok}, rejected ${rejected}`);
  const series = await c.sample('mailprobe_collector_probe_series', { probe: 'p-ap' });
  assert.ok(series !== undefined && series <= 500, `series ${series}`);
  assert.equal(await c.sample('mailprobe_collector_rejections_total', { code: 'series_limit' }), rejectionsBefore + rejected);
  assert.equal(await accepted(), acceptedBefore + ok);
  const ttlSeries = (await c.scrape()).split('\n').filter((l) => l.startsWith('mailprobe_dns_ttl_seconds{') && l.includes('probe="p-ap"')).length;
  assert.ok(ttlSeries <= 500, `${ttlSeries} dns_ttl series for p-ap`);
});

test('the memory of batch ids is bounded (dedup_batches: 3): a very old batch id is applied again', async () => {
  const first = batchOf([smtp()], { id: 'p-us', region: 'us' });
  assert.equal((await c.push(first)).body.status, 'accepted');
  assert.equal((await c.push(first)).body.status, 'duplicate');
  for (let i = 0; i < 3; i++) await c.push(batchOf([smtp()], { id: 'p-us', region: 'us' }));
  assert.equal((await c.push(first)).body.status, 'accepted');
});

test('unknown routes → 404 with a reason', async () => {
  const r = await request(`${c.url}/v2/results`, { method: 'POST' });
  assert.equal(r.statusCode, 404);
  assert.equal(((await r.body.json()) as { error: string }).error, 'not_found');
});

test('a value outside a set of literals → 400 invalid_batch naming the field and what it may be', async () => {
  await unchanged(async () => {
    const r = await c.push(batchOf([{ ...smtp(), side: 'sideways' } as never]));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_batch');
    assert.equal(String(r.body.message), 'the batch does not match the wire schema: results.0.side: must be one of "old", "new"');
  });
});

test('the enums the collector validates with accept exactly the literals of the wire schema', () => {
  // The collector's ajv options (collector/app.ts).
  const ajv = new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, discriminator: true });
  const validate = ajv.compile(wireBodySchema());
  let compared = 0;
  for (const r of mixedResults()) {
    const props = CHECK_DEFS[r.type as CheckType].result.properties as Record<string, { anyOf?: { const?: unknown }[] }>;
    for (const [field, schema] of Object.entries(props)) {
      const literals = schema.anyOf?.every((b) => 'const' in b) ? schema.anyOf.map((b) => b.const) : [];
      for (const v of [...literals, 'not-one-of-them', 7]) {
        if (literals.length === 0) break;
        const b = batchOf([{ ...r, [field]: v } as never]);
        assert.equal(validate(b), Value.Check(Batch, b), `${r.type}.${field} = ${JSON.stringify(v)}`);
        assert.equal(validate(b), literals.includes(v), `${r.type}.${field} = ${JSON.stringify(v)}`);
        compared++;
      }
    }
  }
  assert.ok(compared > 100, `${compared} values compared`);
});
