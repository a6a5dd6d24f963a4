/**
 * Drills from the attack on the collector (issue 15), each against a real collector on loopback:
 * per-probe exact de-duplication (one probe cannot wipe another's memory; a refused batch is not
 * remembered), the region bound to the probe's identity, results only about the plan's server
 * IPs, fleet-wide series (no probe label, the PTR names and MTA-STS mode included) what the
 * probes agree on, pushes rate-limited per probe with Retry-After, labels cut on code points,
 * compressed bodies refused, absurd values refused by the wire schema.
 */
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { test } from 'node:test';
import { request } from 'undici';
import { hashToken } from '../../collector/plugins/auth.js';
import { ResultDedup } from '../../collector/dedup.js';
import { resultOps } from '../../collector/samples.js';
import { METRICS } from '../../protocol/metrics.js';
import type { CheckResult, DnsResult, SmtpResult } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { batchOf, mixedResults, NEW_IP, OLD_IP } from '../support/results.js';

const smtp = (ip = OLD_IP, side: 'old' | 'new' = 'old'): SmtpResult => ({ ...mixedResults().find((r): r is SmtpResult => r.type === 'smtp')!, ip, side });
const dns = (resolver: string): DnsResult => ({ ...mixedResults().find((r): r is DnsResult => r.type === 'dns')!, resolver });
/** A batch of a numbered stream: results firstResult … firstResult + n - 1. */
const streamed = (results: CheckResult[], probe: { id: string; region: string }, stream: string, firstResult: number, id?: string): Batch => {
  const b = batchOf(results, probe, id);
  return { ...b, batch: { ...b.batch, stream, firstResult } };
};
const applied = (c: TestCollector) => c.sample('mailprobe_collector_results_total');
const checks = (c: TestCollector, probe: string) => c.sample('mailprobe_checks_total', { probe, type: 'smtp', result: 'success' });

const fast = { push_rate: 100_000, push_burst: 100_000 };

test('dedup is per probe: the same stream, numbers and batch id from two probes are both applied', async () => {
  const c = await startTestCollector(testPlan({ collector: { ...fast, dedup_batches: 5 } }));
  try {
    const eu = { id: 'p-eu', region: 'eu' };
    const us = { id: 'p-us', region: 'us' };
    assert.equal((await c.push(streamed([smtp()], eu, 'stream-shared', 0, 'batch-shared-1'))).body.status, 'accepted');
    assert.equal((await c.push(streamed([smtp()], us, 'stream-shared', 0, 'batch-shared-1'))).body.status, 'accepted');
    // Without a stream (older probes) the batch id is the key, per probe as well.
    assert.equal((await c.push(batchOf([smtp()], eu, 'batch-shared-2'))).body.status, 'accepted');
    assert.equal((await c.push(batchOf([smtp()], us, 'batch-shared-2'))).body.status, 'accepted');
    assert.equal(await checks(c, 'p-eu'), 2);
    assert.equal(await checks(c, 'p-us'), 2);
    assert.equal(await applied(c), 4);
  } finally {
    await c.close();
  }
});

test("another probe's pushes (1001 empty, 20 full) cannot make a probe's old batch apply again", async () => {
  const c = await startTestCollector(testPlan({ collector: { ...fast, dedup_batches: 5 } }));
  try {
    const eu = { id: 'p-eu', region: 'eu' };
    const us = { id: 'p-us', region: 'us' };
    const old = batchOf([smtp()], eu);
    const oldStreamed = streamed([smtp()], eu, 'stream-eu-1', 0);
    assert.equal((await c.push(old)).body.status, 'accepted');
    assert.equal((await c.push(oldStreamed)).body.status, 'accepted');
    for (let i = 0; i < 1001; i++) assert.equal((await c.push(batchOf([], us))).status, 200);
    for (let i = 0; i < 20; i++) await c.push(batchOf([smtp()], us));
    assert.deepEqual((await c.push(old)).body, { status: 'duplicate', results: 1 });
    assert.deepEqual((await c.push(oldStreamed)).body, { status: 'duplicate', results: 1 });
    assert.equal(await checks(c, 'p-eu'), 2);
  } finally {
    await c.close();
  }
});

test('a batch refused for the series limit is refused again, never answered "duplicate"', async () => {
  const c = await startTestCollector(testPlan({ collector: { ...fast, max_series_per_probe: 10 } }));
  try {
    const big = streamed(
      Array.from({ length: 12 }, (_, i) => dns(`10.0.0.${i}`)),
      { id: 'p-eu', region: 'eu' },
      'stream-limit',
      0,
    );
    const plain = batchOf(big.results, { id: 'p-eu', region: 'eu' });
    for (const b of [big, plain]) {
      const first = await c.push(b);
      assert.equal(first.status, 422);
      assert.equal(first.body.error, 'series_limit');
      const again = await c.push(b);
      assert.equal(again.status, 422, `retry answered ${JSON.stringify(again.body)}`);
    }
    assert.equal(await applied(c), 0);
  } finally {
    await c.close();
  }
});

test('numbered results are applied once: a re-sealed batch (new id and seq, same numbers) is a duplicate, an overlapping one applies only its new results', async () => {
  const c = await startTestCollector(testPlan({ collector: fast }));
  try {
    const eu = { id: 'p-eu', region: 'eu' };
    assert.equal((await c.push(streamed([smtp(), smtp()], eu, 'stream-reseal', 10))).body.status, 'accepted');
    assert.equal((await c.push(streamed([smtp(), smtp()], eu, 'stream-reseal', 10))).body.status, 'duplicate');
    assert.equal((await c.push(streamed([smtp(), smtp(), smtp()], eu, 'stream-reseal', 11))).body.status, 'accepted');
    assert.equal(await checks(c, 'p-eu'), 4, 'results 10, 11, 12, 13 once each');
    assert.equal(await applied(c), 4);
    // A new stream (a new spool) starts its own numbering.
    assert.equal((await c.push(streamed([smtp()], eu, 'stream-other', 10))).body.status, 'accepted');
    assert.equal(await checks(c, 'p-eu'), 5);
    const half = batchOf([smtp()], eu);
    const r = await c.push({ ...half, batch: { ...half.batch, stream: 'stream-half' } });
    assert.equal(r.status, 400);
    assert.match(String(r.body.message), /batch\.firstResult: required with batch\.stream/);
  } finally {
    await c.close();
  }
});

test('the dedup memory of one probe stays within its byte bound through 100 000 batches with gaps', () => {
  const d = new ResultDedup({ maxStreams: 4, maxRanges: 16, maxIds: 100 });
  let n = 0;
  let last = { stream: '', first: 0 };
  for (let i = 0; i < 100_000; i++) {
    const stream = `stream-${i % 3}`;
    d.commit('p', { id: `b${i}`, stream, firstResult: n, count: 3 });
    last = { stream, first: n };
    n += 3 + (i % 3); // gaps: dropped batches
    if (i % 5 === 0) d.commit('p', { id: `legacy-${i}`, count: 1 });
  }
  assert.ok(d.bytesOf('p') <= d.maxBytesPerProbe, `${d.bytesOf('p')} > ${d.maxBytesPerProbe}`);
  assert.ok(d.maxBytesPerProbe < 64 * 1024);
  // Recent numbers are still exact: applied ones are known, the gap after them is not.
  assert.deepEqual(d.select('p', { id: 'x', stream: last.stream, firstResult: last.first - 1, count: 5 }), [0, 4]);
  assert.deepEqual(d.select('p', { id: 'x', stream: last.stream, firstResult: 0, count: 1 }), [], 'below the floor counts as applied');
});

test('batch ids are kept within a byte budget per probe: the oldest of that probe go, another probe keeps all of its own', () => {
  const d = new ResultDedup({ maxIds: 1000, maxIdBytes: 2048 });
  const id = (p: string, i: number) => `${p}-${String(i).padStart(58, '0')}`;
  for (let i = 0; i < 3; i++) d.commit('b', { id: id('b', i), count: 1 });
  for (let i = 0; i < 100; i++) d.commit('a', { id: id('a', i), count: 1 });
  // 60-character ids cost 136 B each: 15 fit in 2 KiB.
  assert.ok(d.bytesOf('a') <= 2048, `${d.bytesOf('a')} B held for probe a`);
  assert.equal(d.bytesOf('a'), 15 * 136);
  assert.deepEqual(d.select('a', { id: id('a', 99), count: 1 }), [], 'the newest id of a is still known');
  assert.deepEqual(d.select('a', { id: id('a', 85), count: 1 }), [], 'the 15th newest too');
  assert.deepEqual(d.select('a', { id: id('a', 84), count: 1 }), [0], 'older ones of a are forgotten');
  for (let i = 0; i < 3; i++) assert.deepEqual(d.select('b', { id: id('b', i), count: 1 }), [], `b's batch ${i} is still known`);
  assert.equal(d.bytesOf('b'), 3 * 136);
});

test('the region is bound: another region → 409 naming both, nothing applied; an old-form entry binds the first push; a move after silence drops the old region at once', async () => {
  let now = Date.now();
  const plan = testPlan({
    collector: {
      ...fast,
      probe_stale_after: '5m',
      tokens: { 'p-eu': { region: 'eu', hash: hashToken(tokenFor('p-eu')) }, 'p-us': hashToken(tokenFor('p-us')) },
    },
  });
  const c = await startTestCollector(plan, { now: () => now, sweepIntervalMs: 20 });
  try {
    let r = await c.push(batchOf([smtp()], { id: 'p-eu', region: 'us' }));
    assert.equal(r.status, 409);
    assert.equal(r.body.error, 'region_mismatch');
    assert.match(String(r.body.message), /probe p-eu is bound to region eu in collector\.tokens, the batch says us/);
    assert.equal(await applied(c), 0);
    assert.equal((await c.push(batchOf([smtp()], { id: 'p-eu', region: 'eu' }))).status, 200);

    assert.equal((await c.push(batchOf([smtp()], { id: 'p-us', region: 'us' }))).status, 200);
    r = await c.push(batchOf([smtp()], { id: 'p-us', region: 'ap' }));
    assert.equal(r.status, 409);
    assert.match(String(r.body.message), /probe p-us pushes under region us .* the batch says ap/);
    assert.equal(await c.sample('mailprobe_collector_rejections_total', { code: 'region_mismatch' }), 2);

    // p-us falls silent past probe_stale_after, then comes back under ap: accepted, and nothing
    // of region us is left (its last push too, so "probe silent" does not fire for us).
    now += 6 * 60_000;
    await new Promise((res) => setTimeout(res, 100));
    assert.equal((await c.push(batchOf([smtp()], { id: 'p-us', region: 'ap' }))).status, 200);
    const text = await c.scrape();
    const us = text.split('\n').filter((l) => l.includes('probe="p-us"') && l.includes('region="us"'));
    assert.deepEqual(us, []);
    assert.equal(await c.sample('mailprobe_probe_last_push_timestamp_seconds', { region: 'ap', probe: 'p-us' }), now / 1000);
    assert.equal(await c.sample('mailprobe_checks_total', { region: 'ap', probe: 'p-us', type: 'smtp', result: 'success' }), 1);
  } finally {
    await c.close();
  }
});

test('results about server IPs must name an IP of the plan with its side → else 422 naming the field', async () => {
  const c = await startTestCollector(testPlan({ collector: fast }));
  try {
    const eu = { id: 'p-eu', region: 'eu' };
    const cases: [CheckResult, RegExp][] = [
      [
        {
          type: 'dnsbl',
          startedAt: Date.now(),
          durationSeconds: 0.01,
          ok: true,
          ip: '198.51.100.7',
          side: 'new',
          list: 'zen.spamhaus.org',
          listed: true,
          answers: ['127.0.0.2'],
        },
        /results\.1\.ip: "198\.51\.100\.7" is not a server IP of the plan \(127\.0\.0\.2 old, 127\.0\.0\.3 new\)/,
      ],
      [
        {
          type: 'dnsbl',
          startedAt: Date.now(),
          durationSeconds: 0.01,
          ok: true,
          ip: NEW_IP,
          side: 'old',
          list: 'zen.spamhaus.org',
          listed: true,
          answers: ['127.0.0.2'],
        },
        /results\.1\.side: 127\.0\.0\.3 is on side new in the plan, the result says old/,
      ],
      [smtp('203.0.113.99', 'new'), /results\.1\.ip: "203\.0\.113\.99"/],
      [
        {
          type: 'rdns',
          startedAt: Date.now(),
          durationSeconds: 0.01,
          ok: true,
          ip: '10.9.9.9',
          side: 'old',
          ptrNames: [],
          fcrdns: false,
          matchesMailHost: false,
        },
        /results\.1\.ip/,
      ],
      [
        { type: 'auth', startedAt: Date.now(), durationSeconds: 0.01, ok: true, method: 'spf', subject: '10.9.9.9', side: 'old', pass: false },
        /results\.1\.subject/,
      ],
      [
        {
          type: 'roundtrip',
          startedAt: Date.now(),
          durationSeconds: 1,
          ok: true,
          viaIp: '10.9.9.9',
          side: 'new',
          messageId: 'm',
          delivered: true,
          latencySeconds: 1,
          sameClock: true,
        },
        /results\.1\.viaIp/,
      ],
    ];
    for (const [bad, msg] of cases) {
      const r = await c.push(batchOf([smtp(), bad], eu));
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error, 'unknown_server');
      assert.match(String(r.body.message), msg);
    }
    assert.equal(await applied(c), 0, 'nothing of a refused batch is applied');
    assert.equal((await c.scrape()).includes('198.51.100.7'), false);
  } finally {
    await c.close();
  }
});

test('pushes are rate-limited per probe: empty and duplicate pushes count; 429 with Retry-After; other probes unaffected', async () => {
  let now = Date.now();
  const c = await startTestCollector(testPlan({ collector: { push_rate: 0.5, push_burst: 3 } }), { now: () => now });
  try {
    const eu = { id: 'p-eu', region: 'eu' };
    const b = batchOf([smtp()], eu);
    assert.equal((await c.push(b)).status, 200);
    assert.equal((await c.push(b)).body.status, 'duplicate');
    assert.equal((await c.push(batchOf([], eu))).status, 200);
    const limited = await request(`${c.url}/v1/results`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor('p-eu')}` },
      body: JSON.stringify(batchOf([smtp()], eu)),
    });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.headers['retry-after'], '2', 'one push per 2 s at push_rate 0.5');
    const body = (await limited.body.json()) as { error: string; message: string };
    assert.equal(body.error, 'rate_limited');
    assert.equal((await c.push(batchOf([smtp()], { id: 'p-us', region: 'us' }))).status, 200, 'another probe has its own bucket');
    now += 2000;
    assert.equal((await c.push(batchOf([smtp()], eu))).status, 200, 'allowed again after Retry-After');
    assert.equal((await c.push(batchOf([smtp()], eu))).status, 429);
    assert.equal(await c.sample('mailprobe_collector_rejections_total', { code: 'rate_limited' }), 2);
    assert.equal(await checks(c, 'p-eu'), 2);
  } finally {
    await c.close();
  }
});

test('labels are cut on code points (no half surrogate pairs); Content-Encoding other than identity → 415; absurd values → 400 naming the field', async () => {
  const c = await startTestCollector(testPlan({ collector: { ...fast, max_label_length: 8 } }));
  try {
    const eu = { id: 'p-eu', region: 'eu' };
    assert.equal((await c.push(batchOf([dns('abcdefg\u{1F600}xyz')], eu))).status, 200);
    const text = await c.scrape();
    assert.match(text, /resolver="abcdefg\u{1F600}"/u);
    assert.equal(text.includes('\uFFFD'), false);
    assert.equal(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/.test(text), false, 'no lone high surrogate');

    const body = JSON.stringify(batchOf([smtp()], eu));
    for (const [enc, payload] of [
      ['deflate', body],
      ['deflate', deflateSync(body)],
      ['gzip', body],
    ] as const) {
      const r = await request(`${c.url}/v1/results`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': enc, authorization: `Bearer ${tokenFor('p-eu')}` },
        body: payload,
      });
      assert.equal(r.statusCode, 415);
      assert.equal(((await r.body.json()) as { error: string }).error, 'unsupported_encoding');
    }
    const identity = await request(`${c.url}/v1/results`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity', authorization: `Bearer ${tokenFor('p-eu')}` },
      body: JSON.stringify(batchOf([smtp()], eu)),
    });
    assert.equal(identity.statusCode, 200);

    const b = batchOf([smtp()], eu);
    const absurd: [Batch, RegExp][] = [
      [{ ...b, probe: { ...b.probe, spool: { bytes: 2 ** 60, batches: 1, dropped: 0 } } }, /probe\.spool\.bytes/],
      [{ ...b, batch: { ...b.batch, createdAt: 2 ** 62 } }, /batch\.createdAt/],
      [{ ...b, batch: { ...b.batch, seq: 2 ** 63 } }, /batch\.seq/],
      [{ ...b, results: [{ ...smtp(), startedAt: Date.parse('3000-01-01') }] }, /results\.0\.startedAt/],
      [
        { ...b, results: [{ ...smtp(), tls: { version: 'TLSv1.3', certNames: [], certExpiry: -99_999_999_999, verified: true } }] },
        /results\.0\.tls\.certExpiry/,
      ],
    ];
    for (const [bad, field] of absurd) {
      const r = await c.push(bad);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(String(r.body.message), field);
    }
    assert.equal(await c.sample('mailprobe_probe_spool_bytes', { probe: 'p-eu' }), undefined);
  } finally {
    await c.close();
  }
});

test('one probe cannot flip a fleet-wide verdict: the collector exports what the probes agree on (median / majority)', async () => {
  let now = Date.now();
  const c = await startTestCollector(testPlan({ collector: { ...fast, probe_stale_after: '5m' } }), { now: () => now, sweepIntervalMs: 20 });
  const probes = [
    { id: 'p-eu', region: 'eu' },
    { id: 'p-us', region: 'us' },
    { id: 'p-ap', region: 'ap' },
  ];
  const t = Date.now();
  const listed = (v: boolean): CheckResult => ({
    type: 'dnsbl',
    startedAt: t,
    durationSeconds: 0.01,
    ok: true,
    ip: NEW_IP,
    side: 'new',
    list: 'zen.spamhaus.org',
    listed: v,
    answers: v ? ['127.0.0.2'] : [],
  });
  const fcrdns = (v: boolean): CheckResult => ({
    type: 'rdns',
    startedAt: t,
    durationSeconds: 0.01,
    ok: true,
    ip: OLD_IP,
    side: 'old',
    ptrNames: ['mail.company.test'],
    fcrdns: v,
    matchesMailHost: true,
  });
  const cert = (expiry: number): CheckResult => ({
    ...smtp(OLD_IP, 'old'),
    tls: { version: 'TLSv1.3', certNames: ['mail.company.test'], certExpiry: expiry, verified: true },
  });
  const rt = (spf: 'pass' | 'fail'): CheckResult => ({
    type: 'roundtrip',
    startedAt: t,
    durationSeconds: 2,
    ok: true,
    viaIp: OLD_IP,
    side: 'old',
    messageId: 'm',
    delivered: true,
    latencySeconds: 1,
    sameClock: true,
    verdicts: { spf, dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' },
  });
  const push = async (i: number, rs: CheckResult[]) => assert.equal((await c.push(batchOf(rs, probes[i]))).status, 200);
  const dnsbl = () => c.sample('mailprobe_dnsbl_listed', { ip: NEW_IP, list: 'zen.spamhaus.org' });
  const fc = () => c.sample('mailprobe_fcrdns_ok', { ip: OLD_IP });
  try {
    const real = Math.floor(t / 1000) + 60 * 86_400;
    for (const i of [0, 1]) await push(i, [listed(false), fcrdns(true), cert(real), rt('pass')]);
    // Two probes: one disagreeing changes nothing.
    await push(1, [fcrdns(false)]);
    assert.equal(await fc(), 1, 'one of two probes cannot break FCrDNS');
    // The third (forging) probe: listed, expired certificate, SPF fail — outvoted.
    await push(2, [listed(true), fcrdns(false), cert(0), rt('fail')]);
    assert.equal(await dnsbl(), 0, 'one of three probes cannot list the new IP');
    assert.equal(await c.sample('mailprobe_tls_cert_expiry_timestamp_seconds', { ip: OLD_IP }), real, 'the median expiry, not the forged one');
    assert.equal(await c.sample('mailprobe_roundtrip_auth', { via_ip: OLD_IP, method: 'spf', result: 'pass' }), 1);
    assert.equal(await c.sample('mailprobe_roundtrip_auth', { via_ip: OLD_IP, method: 'spf', result: 'fail' }), undefined);
    // Two of three agree: the verdict follows.
    assert.equal(await fc(), 0, 'two of three probes see FCrDNS broken');
    await push(0, [listed(true)]);
    assert.equal(await dnsbl(), 1, 'two of three probes see the listing');
    // Silent probes lose their vote: p-eu and p-us silent past probe_stale_after, p-ap alone.
    await push(0, [listed(false)]);
    assert.equal(await dnsbl(), 0);
    now += 6 * 60_000;
    await push(2, [listed(true)]);
    await new Promise((res) => setTimeout(res, 150));
    assert.equal(await dnsbl(), 1, 'the only probe left decides');
  } finally {
    await c.close();
  }
});

test('one probe of three cannot add a PTR name, flip the FCrDNS prediction or the MTA-STS mode (info series export only what the majority reports)', async () => {
  const c = await startTestCollector(testPlan({ collector: fast }));
  const probes = [
    { id: 'p-eu', region: 'eu' },
    { id: 'p-us', region: 'us' },
    { id: 'p-ap', region: 'ap' },
  ];
  const t = Date.now();
  // The new IP's PTR still names the ISP's host: the prediction is "FCrDNS breaks once served".
  const rdns = (ptrNames: string[]): CheckResult => {
    const matches = ptrNames.includes('mail.company.test');
    return { type: 'rdns', startedAt: t, durationSeconds: 0.01, ok: true, ip: NEW_IP, side: 'new', ptrNames, fcrdns: matches, matchesMailHost: matches };
  };
  const sts = (mode: 'enforce' | 'testing' | 'none'): CheckResult => ({
    type: 'auth',
    startedAt: t,
    durationSeconds: 0.01,
    ok: true,
    method: 'mta-sts',
    subject: 'company.test',
    pass: true,
    mtaStsMode: mode,
  });
  const push = async (i: number, rs: CheckResult[]) => assert.equal((await c.push(batchOf(rs, probes[i]))).status, 200);
  const values = async (metric: string, label: string) =>
    (await c.scrape())
      .split('\n')
      .filter((l) => l.startsWith(`${metric}{`) && !l.endsWith(' 0'))
      .map((l) => new RegExp(`${label}="([^"]*)"`).exec(l)?.[1])
      .sort();
  const honest = () => [rdns(['host-7.isp.test']), sts('enforce')];
  const forged = () => [rdns(['evil.test', 'mail.company.test']), sts('none')];
  try {
    // The forging probe reports first: alone, it is shown …
    await push(2, forged());
    assert.deepEqual(await values('mailprobe_ptr_info', 'ptr'), ['evil.test,mail.company.test']);
    // … until the honest ones report: then nothing of it remains.
    await push(0, honest());
    await push(1, honest());
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(await values('mailprobe_ptr_info', 'ptr'), ['host-7.isp.test'], 'only the PTR name the majority reports');
      assert.equal(await c.sample('mailprobe_fcrdns_ok_when_served', { ip: NEW_IP, side: 'new' }), 0, 'the prediction the majority makes');
      assert.equal(await c.sample('mailprobe_ptr_matches_mail_host', { ip: NEW_IP, side: 'new' }), 0);
      assert.deepEqual(await values('mailprobe_mta_sts_mode', 'mode'), ['enforce'], 'the mode the majority reports');
      // The forger reports again, after the others: still outvoted.
      await push(2, forged());
    }
    // Two of three report a change: it is shown.
    await push(0, [rdns(['mail.company.test']), sts('testing')]);
    await push(1, [rdns(['mail.company.test']), sts('testing')]);
    assert.deepEqual(await values('mailprobe_ptr_info', 'ptr'), ['mail.company.test']);
    assert.equal(await c.sample('mailprobe_fcrdns_ok_when_served', { ip: NEW_IP, side: 'new' }), 1);
    assert.deepEqual(await values('mailprobe_mta_sts_mode', 'mode'), ['testing']);
  } finally {
    await c.close();
  }
});

test('every fleet-wide series a result feeds goes through the consensus (a set or one-of without a probe label); the one exception is the dnsbl_errors_total counter', () => {
  const t = Date.now();
  const failures: CheckResult[] = mixedResults(t).map((r) => ({ ...r, ok: false, errorClass: 'timeout' }) as CheckResult);
  const fleet = new Map<string, Set<string>>();
  for (const r of [...mixedResults(t), ...failures]) {
    for (const op of resultOps({ id: 'p', region: 'eu' }, r)) {
      if (METRICS[op.metric].labels.includes('probe' as never)) continue;
      fleet.set(METRICS[op.metric].name, (fleet.get(METRICS[op.metric].name) ?? new Set()).add(op.op));
    }
  }
  const kinds = Object.fromEntries([...fleet].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, ops]) => [name, [...ops].sort().join('+')]));
  assert.deepEqual(kinds, {
    mailprobe_dkim_key_present: 'set',
    mailprobe_dmarc_present: 'set',
    mailprobe_dnsbl_errors_total: 'inc',
    mailprobe_dnsbl_listed: 'set',
    mailprobe_fcrdns_ok: 'set',
    mailprobe_fcrdns_ok_when_served: 'set',
    mailprobe_mta_sts_mode: 'one-of',
    mailprobe_mta_sts_ok: 'set',
    mailprobe_ptr_info: 'one-of',
    mailprobe_ptr_matches_mail_host: 'set',
    mailprobe_roundtrip_auth: 'one-of',
    mailprobe_spf_pass: 'set',
    mailprobe_tls_cert_expiry_timestamp_seconds: 'set',
    mailprobe_tls_cert_valid: 'set',
    mailprobe_tlsa_present: 'set',
  });
});
