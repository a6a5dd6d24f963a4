/**
 * The remote-write output against a small local receiver: the remote-write 1.0 request (headers,
 * snappy protobuf), cumulative counters and histograms, the probe's timestamps, retry with
 * backoff on 5xx/429/network errors, 4xx drops, the bounded queue, resends and stale markers.
 * The receiver is a plain HTTP server that decodes what it gets and answers what the test says
 * (a real Prometheus receives the samples in remote-write-prometheus.test.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { RemoteWriteOutput, remoteWriteOptionsFromPlan, type RemoteWriteOptions } from '../../collector/outputs/remote-write.js';
import {
  type DecodedSeries,
  decodeWriteRequest,
  encodeTimeSeries,
  encodeWriteRequest,
  maxTimeSeriesLength,
  type WireSample,
  writeRequestOf,
} from '../../collector/outputs/remote-write/proto.js';
import { SampleOps, type SampleOp } from '../../collector/samples.js';
import { startTestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { batchOf, mixedResults } from '../support/results.js';

interface Received {
  headers: IncomingMessage['headers'];
  series: DecodedSeries[];
  metadata: number;
}

/** A receiver answering `answer(n)` to the n-th request (0-based); records decoded requests. */
async function receiver(
  answer: (n: number) => number | 'hang' = () => 204,
): Promise<{ url: string; got: Received[]; requests: () => number; close(): Promise<void> }> {
  const got: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answer(n++);
      if (status === 'hang') return;
      if (status >= 200 && status < 300) {
        const d = decodeWriteRequest(Buffer.concat(chunks));
        got.push({ headers: req.headers, series: d.timeseries, metadata: d.metadata.length });
      }
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? `answer ${status}` : undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/api/v1/write`,
    got,
    requests: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function output(url: string, over: Partial<RemoteWriteOptions> = {}): { out: RemoteWriteOutput; registry: Registry } {
  const registry = new Registry();
  const out = new RemoteWriteOutput({
    url,
    registry,
    instance: 'rw-test',
    shards: 1,
    flushIntervalMs: 50,
    retryMinMs: 20,
    retryMaxMs: 80,
    closeTimeoutMs: 500,
    ...over,
  });
  return { out, registry };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String((x.labels as Record<string, unknown>)[k]) === val));
  return v?.value ?? 0;
}

const flat = (got: Received[]) => got.flatMap((r) => r.series.flatMap((s) => s.samples.map((x) => ({ labels: s.labels, ...x }))));
const T = Date.now() - 10_000;
const rp = { region: 'eu', probe: 'p-eu' };
const smtpUp = (v: number, ts: number): SampleOp => ({ op: 'set', metric: 'smtpUp', labels: { ...rp, ip: '127.0.0.2', side: 'old' }, value: v, ts });

test('a request is remote-write 1.0: headers, snappy protobuf, job/instance labels, the probe timestamps', async () => {
  const rx = await receiver();
  const { out } = output(rx.url, { headers: { 'x-scope-orgid': 'mail' } });
  try {
    out.apply(SampleOps.from([{ op: 'inc', metric: 'checks', labels: { ...rp, type: 'smtp', result: 'success' }, value: 1, ts: T }, smtpUp(1, T + 5)]));
    await out.flush();
    assert.equal(rx.got.length, 1);
    const h = rx.got[0]?.headers ?? {};
    assert.equal(h['content-encoding'], 'snappy');
    assert.equal(h['content-type'], 'application/x-protobuf');
    assert.equal(h['x-prometheus-remote-write-version'], '0.1.0');
    assert.equal(h['x-scope-orgid'], 'mail');
    assert.ok((rx.got[0]?.metadata ?? 0) > 10, 'metric metadata rides along with the first request');
    const samples = flat(rx.got);
    assert.deepEqual(
      samples.map((s) => [s.labels.__name__, s.labels.job, s.labels.instance, s.value, s.timestamp]),
      [
        ['mailprobe_checks_total', 'mailprobe-collector', 'rw-test', 1, T],
        ['mailprobe_smtp_up', 'mailprobe-collector', 'rw-test', 1, T + 5],
      ],
    );
    assert.deepEqual(
      Object.keys(rx.got[0]?.series[0]?.labels ?? {}),
      ['__name__', 'instance', 'job', 'probe', 'region', 'result', 'type'],
      'labels sorted by name',
    );
  } finally {
    await out.close();
    await rx.close();
  }
});

test('counters and histograms are sent cumulative, one sample per series per batch', async () => {
  const rx = await receiver();
  const { out } = output(rx.url);
  try {
    const l = { ...rp, resolver: '127.0.0.53' };
    out.apply(
      SampleOps.from([
        { op: 'observe', metric: 'dnsLookupDuration', labels: l, value: 0.004, ts: T },
        { op: 'observe', metric: 'dnsLookupDuration', labels: l, value: 0.3, ts: T + 1 },
        { op: 'inc', metric: 'dnsLookups', labels: { ...l, result: 'success' }, value: 1, ts: T },
        { op: 'inc', metric: 'dnsLookups', labels: { ...l, result: 'success' }, value: 1, ts: T + 1 },
      ]),
    );
    await out.flush();
    out.apply(
      SampleOps.from([
        { op: 'observe', metric: 'dnsLookupDuration', labels: l, value: 20, ts: T + 2 },
        { op: 'inc', metric: 'dnsLookups', labels: { ...l, result: 'success' }, value: 1, ts: T + 2 },
      ]),
    );
    await out.flush();
    const s = flat(rx.got);
    const at = (name: string, extra: Record<string, string> = {}) =>
      s.filter((x) => x.labels.__name__ === name && Object.entries(extra).every(([k, v]) => x.labels[k] === v)).map((x) => [x.value, x.timestamp]);
    assert.deepEqual(at('mailprobe_dns_lookups_total'), [
      [2, T + 1],
      [3, T + 2],
    ]);
    assert.deepEqual(at('mailprobe_dns_lookup_duration_seconds_bucket', { le: '0.005' }), [
      [1, T + 1],
      [1, T + 2],
    ]);
    assert.deepEqual(at('mailprobe_dns_lookup_duration_seconds_bucket', { le: '0.5' }), [
      [2, T + 1],
      [2, T + 2],
    ]);
    assert.deepEqual(at('mailprobe_dns_lookup_duration_seconds_bucket', { le: '10' }), [
      [2, T + 1],
      [2, T + 2],
    ]);
    assert.deepEqual(at('mailprobe_dns_lookup_duration_seconds_bucket', { le: '+Inf' }), [
      [2, T + 1],
      [3, T + 2],
    ]);
    assert.deepEqual(at('mailprobe_dns_lookup_duration_seconds_count'), [
      [2, T + 1],
      [3, T + 2],
    ]);
    assert.deepEqual(
      at('mailprobe_dns_lookup_duration_seconds_sum').map(([v]) => Math.round((v ?? 0) * 1000)),
      [304, 20304],
    );
  } finally {
    await out.close();
    await rx.close();
  }
});

test('timestamps only move forward per series; an older gauge value never overwrites a newer one', async () => {
  const rx = await receiver();
  const { out } = output(rx.url);
  try {
    out.apply(SampleOps.from([smtpUp(0, T + 100)]));
    out.apply(SampleOps.from([smtpUp(1, T + 50)])); // a late spool replay
    out.apply(SampleOps.from([{ op: 'inc', metric: 'checks', labels: { ...rp, type: 'smtp', result: 'success' }, value: 1, ts: T + 100 }]));
    out.apply(SampleOps.from([{ op: 'inc', metric: 'checks', labels: { ...rp, type: 'smtp', result: 'success' }, value: 1, ts: T + 40 }]));
    await out.flush();
    const s = flat(rx.got);
    assert.deepEqual(
      s.filter((x) => x.labels.__name__ === 'mailprobe_smtp_up').map((x) => [x.value, x.timestamp]),
      [[0, T + 100]],
    );
    assert.deepEqual(
      s.filter((x) => x.labels.__name__ === 'mailprobe_checks_total').map((x) => [x.value, x.timestamp]),
      [
        [1, T + 100],
        [2, T + 101],
      ],
    );
  } finally {
    await out.close();
    await rx.close();
  }
});

test('5xx, 429 and network errors are retried with backoff until accepted; counts add up', async () => {
  // 500, 503, 429, then a request the server never answers (a timeout), then accepted.
  const answers: (number | 'hang')[] = [500, 503, 429, 'hang'];
  const rx = await receiver((n) => answers[n] ?? 204);
  const { out, registry } = output(rx.url, { requestTimeoutMs: 300 });
  try {
    const started = Date.now();
    out.apply(SampleOps.from([smtpUp(1, T)]));
    await out.flush();
    assert.equal(rx.requests(), 5);
    assert.equal(rx.got.length, 1);
    assert.deepEqual(
      flat(rx.got).map((x) => x.value),
      [1],
    );
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_requests_total', { result: 'retried' }), 4);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_requests_total', { result: 'success' }), 1);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_samples_total', { result: 'sent' }), 1);
    // Backoff 20, 40, 80, 80 ms (50–100 % of each, protocol/backoff.ts) plus the 300 ms timeout.
    assert.ok(Date.now() - started >= 300 + 0.5 * 220, `waited ${Date.now() - started} ms`);
  } finally {
    await out.close();
    await rx.close();
  }
});

test('a 4xx other than 429 drops the batch without retry and counts its samples as rejected', async () => {
  const rx = await receiver((n) => (n === 0 ? 400 : 204));
  const { out, registry } = output(rx.url);
  try {
    out.apply(SampleOps.from([smtpUp(1, T), { op: 'inc', metric: 'checks', labels: { ...rp, type: 'smtp', result: 'success' }, value: 1, ts: T }]));
    await out.flush();
    out.apply(SampleOps.from([smtpUp(0, T + 1)]));
    await out.flush();
    assert.equal(rx.requests(), 2, 'the rejected batch was not sent again');
    assert.deepEqual(
      flat(rx.got).map((x) => x.value),
      [0],
    );
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_samples_total', { result: 'rejected' }), 2);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_requests_total', { result: 'rejected' }), 1);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_requests_total', { result: 'retried' }), 0);
  } finally {
    await out.close();
    await rx.close();
  }
});

test('the queue is bounded: while the receiver fails, the oldest samples are dropped and counted', async () => {
  let failing = true;
  const rx = await receiver(() => (failing ? 503 : 204));
  const { out, registry } = output(rx.url, { batchSize: 10, queueMaxSamples: 50, retryMinMs: 10, retryMaxMs: 20 });
  try {
    // One batch of 10 leaves the queue for the first (failing) request; the rest queue up.
    for (let i = 0; i < 10; i++) out.apply(SampleOps.from([smtpUp(i % 2, T + i)]));
    // The first request was refused (a busy machine may take longer than a fixed wait).
    for (let i = 0; i < 200 && rx.requests() === 0; i++) await new Promise((r) => setTimeout(r, 25));
    for (let i = 0; i < 100; i++)
      out.apply(SampleOps.from([{ op: 'set', metric: 'smtpUp', labels: { ...rp, ip: `10.0.0.${i}`, side: 'new' }, value: 1, ts: T + i }]));
    assert.equal(out.queued, 50);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_queue_samples'), 50);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_dropped_samples_total', { reason: 'queue_full' }), 50);
    failing = false;
    await out.flush();
    const s = flat(rx.got);
    assert.equal(s.length, 60, 'the batch in flight and the 50 newest');
    assert.deepEqual(
      s.slice(10).map((x) => x.labels.ip),
      Array.from({ length: 50 }, (_, i) => `10.0.0.${i + 50}`),
    );
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_samples_total', { result: 'sent' }), 60);
    assert.ok((await metric(registry, 'mailprobe_collector_remote_write_requests_total', { result: 'retried' })) >= 1);
  } finally {
    await out.close();
    await rx.close();
  }
});

test('the queue holds samples as the bytes encodeWriteRequest writes (varints of every width, UTF-8, stale NaN)', () => {
  const long = 'v'.repeat(20_000);
  const samples: WireSample[] = [
    {
      labels: [
        ['__name__', 'a'],
        ['x', 'ü€𝄞'],
      ],
      value: 1.5,
      ts: T,
    },
    {
      labels: [
        ['__name__', 'b'],
        ['x', long],
      ],
      value: -Infinity,
      ts: 1,
    },
    { labels: [['__name__', 'c']], value: Number.NaN, ts: 2 ** 45 + 3 },
    { labels: [], value: 0, ts: 0 },
  ];
  const parts = samples.map((x) => {
    const buf = Buffer.alloc(maxTimeSeriesLength(x) + 3);
    const end = encodeTimeSeries(buf, 3, x);
    assert.ok(end <= buf.length, 'within the room it asked for');
    return buf.subarray(3, end);
  });
  assert.deepEqual(Buffer.concat(parts), Buffer.from(encodeWriteRequest(samples)));
  const md = [{ type: 'counter', name: 'a', help: 'A.' }] as const;
  assert.deepEqual(writeRequestOf(Buffer.concat(parts), md), Buffer.from(encodeWriteRequest(samples, md)));
});

test('the bounded queue drops exactly the oldest samples across its chunks of bytes', async () => {
  let failing = true;
  const rx = await receiver(() => (failing ? 503 : 204));
  const { out, registry } = output(rx.url, { batchSize: 500, queueMaxSamples: 1000, retryMinMs: 10, retryMaxMs: 20 });
  // ~300 bytes a sample: 3 000 samples span several 256 KiB chunks.
  const pad = 'x'.repeat(250);
  const ipOf = (i: number) => `10.${i}.${pad}`;
  try {
    for (let i = 0; i < 3000; i++)
      out.apply(SampleOps.from([{ op: 'set', metric: 'smtpUp', labels: { ...rp, ip: ipOf(i), side: 'new' }, value: 1, ts: T + i }]));
    assert.equal(out.queued, 1000);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_dropped_samples_total', { reason: 'queue_full' }), 1500);
    failing = false;
    await out.flush();
    const s = flat(rx.got);
    assert.deepEqual(
      s.map((x) => x.labels.ip),
      [...Array.from({ length: 500 }, (_, i) => ipOf(i)), ...Array.from({ length: 1000 }, (_, i) => ipOf(i + 2000))],
      'the batch in flight, then the 1 000 newest in order',
    );
    assert.deepEqual(
      s.map((x) => x.timestamp),
      [...Array.from({ length: 500 }, (_, i) => T + i), ...Array.from({ length: 1000 }, (_, i) => T + i + 2000)],
    );
  } finally {
    await out.close();
    await rx.close();
  }
});

test('close() gives up on a dead receiver after its timeout and counts what it dropped', async () => {
  const rx = await receiver(() => 503);
  const { out, registry } = output(rx.url, { closeTimeoutMs: 200 });
  out.apply(SampleOps.from([smtpUp(1, T)]));
  const started = Date.now();
  await out.close();
  assert.ok(Date.now() - started < 1500, 'close() did not hang');
  // The gauge and its stale marker, never delivered.
  assert.equal(await metric(registry, 'mailprobe_collector_remote_write_dropped_samples_total', { reason: 'shutdown' }), 2);
  assert.equal(await metric(registry, 'mailprobe_collector_remote_write_samples_total', { result: 'sent' }), 0);
  await rx.close();
});

test('unchanged series are resent with their last value before they would go stale', async () => {
  const rx = await receiver();
  const { out } = output(rx.url, { resendIntervalMs: 200, flushIntervalMs: 20 });
  try {
    const now = Date.now();
    out.apply(SampleOps.from([smtpUp(1, now), { op: 'inc', metric: 'checks', labels: { ...rp, type: 'smtp', result: 'success' }, value: 3, ts: now }]));
    await new Promise((r) => setTimeout(r, 750));
    await out.flush();
    const s = flat(rx.got).filter((x) => x.labels.__name__ === 'mailprobe_smtp_up');
    assert.ok(s.length >= 3, `sent ${s.length} times`);
    assert.ok(s.every((x) => x.value === 1));
    const ts = s.map((x) => x.timestamp);
    assert.deepEqual(
      [...ts].sort((a, b) => a - b),
      ts,
      'timestamps increase',
    );
    const gaps = ts.slice(1).map((t, i) => t - (ts[i] ?? 0));
    assert.ok(
      gaps.every((g) => g >= 200 && g < 400),
      `resend gaps ${gaps.join(',')}`,
    );
    const c = flat(rx.got).filter((x) => x.labels.__name__ === 'mailprobe_checks_total');
    assert.ok(c.length >= 3 && c.every((x) => x.value === 3), 'counters are resent too');
  } finally {
    await out.close();
    await rx.close();
  }
});

test('stale markers: removed gauges, the old side of a one-of gauge, shutdown', async () => {
  const rx = await receiver();
  const { out } = output(rx.url);
  const named = { ...rp, resolver: '8.8.8.8', name: 'mail.company.test', type: 'A' };
  out.apply(
    SampleOps.from([
      smtpUp(1, T),
      { op: 'set', metric: 'smtpUp', labels: { ...rp, ip: '127.0.0.3', side: 'new' }, value: 1, ts: T },
      { op: 'one-of', metric: 'dnsAnswerSide', labels: named, label: 'side', value: 'old', ts: T },
    ]),
  );
  out.apply(SampleOps.from([{ op: 'one-of', metric: 'dnsAnswerSide', labels: named, label: 'side', value: 'new', ts: T + 1 }]));
  out.remove('smtpUp', { ...rp, ip: '127.0.0.2', side: 'old' });
  await out.flush();
  const stale = () =>
    flat(rx.got)
      .filter((x) => x.stale)
      .map((x) => `${x.labels.__name__}{${x.labels.ip ?? x.labels.side}}`);
  assert.deepEqual(stale(), ['mailprobe_dns_answer_side{old}', 'mailprobe_smtp_up{127.0.0.2}']);
  assert.equal(out.seriesCount, 2);
  await out.close();
  assert.deepEqual(stale().slice(2).sort(), ['mailprobe_dns_answer_side{new}', 'mailprobe_smtp_up{127.0.0.3}']);
  await rx.close();
});

test('plan: collector.remote_write is optional, validated, and resend_interval stays below 5m', () => {
  assert.equal(testPlan().collector.remote_write, undefined);
  const plan = testPlan({ collector: { remote_write: { url: 'http://127.0.0.1:9/api/v1/write', replica: 'a', bearer_token_env: 'RW_TOKEN' } } });
  const rw = plan.collector.remote_write;
  assert.equal(rw?.enabled, true);
  assert.equal(rw?.resend_interval, 30_000);
  assert.equal(rw?.shards, 4);
  assert.equal(rw?.flush_interval, 1000);
  assert.equal(rw?.batch_size, 2000);
  const opts = remoteWriteOptionsFromPlan(plan, new Registry(), { RW_TOKEN: 's3cret' });
  assert.equal(opts?.headers?.authorization, 'Bearer s3cret');
  assert.equal(opts?.instance, 'a');
  assert.throws(() => remoteWriteOptionsFromPlan(plan, new Registry(), {}), /RW_TOKEN is not set/);
  const off = testPlan({ collector: { remote_write: { url: 'http://127.0.0.1:9/', enabled: false } } });
  assert.equal(remoteWriteOptionsFromPlan(off, new Registry()), undefined);
  for (const [resend, ok] of [
    ['4m59s', true],
    ['30s', true],
    ['5m', false],
    ['10m', false],
    ['1h', false],
  ] as const) {
    const make = () => testPlan({ collector: { remote_write: { url: 'http://127.0.0.1:9/', resend_interval: resend } } });
    if (ok) assert.doesNotThrow(make);
    else assert.throws(make, /collector\.remote_write\.resend_interval: must be a duration below 5m/);
  }
  assert.throws(
    () => testPlan({ collector: { remote_write: { url: 'ftp://x' } } }),
    /collector\.remote_write\.url: "ftp:\/\/x" must be an http:\/\/ or https:\/\/ URL/,
  );
});

test('a collector with remote_write.results_on_metrics: false sends results only by remote write; /metrics keeps its own', async () => {
  const rx = await receiver();
  const c = await startTestCollector(
    testPlan({ collector: { remote_write: { url: rx.url, replica: 'only-rw', flush_interval: '50ms', results_on_metrics: false } } }),
  );
  try {
    assert.equal((await c.push(batchOf(mixedResults(), { id: 'p-eu', region: 'eu' }))).status, 200);
    await (c.ingest.outputs.find((o) => o.name === 'remote-write') as RemoteWriteOutput).flush();
    const names = new Set(flat(rx.got).map((s) => s.labels.__name__));
    assert.ok(names.has('mailprobe_smtp_up') && names.has('mailprobe_smtp_duration_seconds_bucket'));
    const text = await c.scrape();
    assert.doesNotMatch(text, /^mailprobe_smtp_up/m, 'no results on /metrics');
    assert.match(text, /^mailprobe_collector_batches_total\{result="accepted"\} 1$/m);
    assert.match(text, /^mailprobe_collector_remote_write_samples_total\{result="sent"\} \d+$/m);
  } finally {
    await c.close();
    await rx.close();
  }
});

test('a series that comes back after its stale marker is sent after the marker (a spool replay after the sweep)', async () => {
  const rx = await receiver();
  const { out } = output(rx.url);
  try {
    out.apply(SampleOps.from([smtpUp(1, T)]));
    out.remove('smtpUp', { ...rp, ip: '127.0.0.2', side: 'old' });
    // The probe comes back and replays a result older than the marker.
    out.apply(SampleOps.from([smtpUp(0, T + 1000)]));
    await out.flush();
    const s = flat(rx.got).filter((x) => x.labels.__name__ === 'mailprobe_smtp_up');
    assert.deepEqual(
      s.map((x) => x.stale),
      [false, true, false],
    );
    const [, marker, back] = s;
    assert.ok((back?.timestamp ?? 0) > (marker?.timestamp ?? 0), `sample ${back?.timestamp} after the marker ${marker?.timestamp}`);
    assert.equal(back?.value, 0);
  } finally {
    await out.close();
    await rx.close();
  }
});

test('shards send in parallel, and each series keeps its order across them', async () => {
  // Slow, uneven answers: requests of different shards overtake each other.
  let n = 0;
  const rx = await receiver();
  const slow = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      setTimeout(
        () => {
          const d = decodeWriteRequest(body);
          rx.got.push({ headers: req.headers, series: d.timeseries, metadata: 0 });
          res.writeHead(204).end();
        },
        5 + ((n++ * 7) % 30),
      );
    });
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const addr = slow.address();
  const { out, registry } = output(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`, { shards: 4, batchSize: 5 });
  try {
    for (let round = 0; round < 4; round++) {
      out.apply(
        SampleOps.from(
          Array.from({ length: 40 }, (_, i) => ({
            op: 'set' as const,
            metric: 'smtpUp' as const,
            labels: { ...rp, ip: `10.0.0.${i}`, side: 'new' },
            value: round,
            ts: T + round * 10,
          })),
        ),
      );
    }
    await out.flush();
    const byIp = new Map<string, number[]>();
    for (const s of flat(rx.got)) byIp.set(s.labels.ip ?? '', [...(byIp.get(s.labels.ip ?? '') ?? []), s.timestamp]);
    assert.equal(byIp.size, 40);
    for (const [ip, ts] of byIp) assert.deepEqual(ts, [T, T + 10, T + 20, T + 30], `${ip} in order`);
    assert.equal(await metric(registry, 'mailprobe_collector_remote_write_samples_total', { result: 'sent' }), 160);
  } finally {
    await out.close();
    await rx.close();
    await new Promise<void>((r) => {
      slow.closeAllConnections();
      slow.close(() => r());
    });
  }
});
