/**
 * The series store (collector/store/series-store.ts): its exposition equals what prom-client
 * rendered from the same operations on real pushes (classic and OpenMetrics, promtool-clean,
 * through consensus, one-of switches and the silent-probe sweep); a scrape streams in bounded
 * slices and a push between slices shows up consistently; the sweep removes only per-probe
 * gauges; remote write sends the values of the same store.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { Counter, type Gauge, type Histogram, Registry, type RegistryContentType } from 'prom-client';
import { request } from 'undici';
import { buildCollector } from '../../collector/app.js';
import type { Output } from '../../collector/outputs/output.js';
import { RemoteWriteOutput } from '../../collector/outputs/remote-write.js';
import { decodeWriteRequest } from '../../collector/outputs/remote-write/proto.js';
import { resultOps, seriesKey, type Labels, type SampleOps } from '../../collector/samples.js';
import { RESULT_METRICS, SeriesStore } from '../../collector/store/series-store.js';
import { METRICS, oneOfLabel, type MetricDef, type MetricKey } from '../../protocol/metrics.js';
import { createMetric } from '../../protocol/prom.js';
import type { CheckResult, DnsResult, SmtpResult } from '../../protocol/results.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';
import { batchOf, mixedResults } from '../support/results.js';

/** The output the store replaced (prom-client metrics, as the collector had them): the oracle. */
class PromClientOutput implements Output {
  readonly name = 'prom-client';
  readonly registry = new Registry() as Registry<RegistryContentType>;
  readonly #metrics = new Map<MetricKey, Counter<string> | Gauge<string> | Histogram<string>>();
  readonly #current = new Map<string, string>();
  constructor() {
    for (const key of RESULT_METRICS)
      this.#metrics.set(
        key,
        createMetric(METRICS[key] as MetricDef, this.registry as Registry) as unknown as Counter<string> | Gauge<string> | Histogram<string>,
      );
  }
  apply(ops: SampleOps): void {
    for (const op of ops) {
      const m = this.#metrics.get(op.metric);
      if (!m) continue;
      if (op.op === 'one-of') {
        const key = seriesKey(op.metric, op.labels, [op.label, '']);
        const prev = this.#current.get(key);
        if (prev !== undefined && prev !== op.value) m.remove({ ...op.labels, [op.label]: prev });
        (m as Gauge<string>).set({ ...op.labels, [op.label]: op.value }, 1);
        this.#current.set(key, op.value);
      } else if (op.op === 'observe') (m as Histogram<string>).observe(op.labels, op.value);
      else if (op.op === 'inc') (m as Counter<string>).inc(op.labels, op.value);
      else (m as Gauge<string>).set(op.labels, op.value);
    }
  }
  remove(metric: MetricKey, labels: Labels): void {
    this.#metrics.get(metric)?.remove(labels);
    const exclusive = oneOfLabel(metric);
    if (exclusive) this.#current.delete(seriesKey(metric, labels, [exclusive, '']));
  }
  async text(om: boolean): Promise<string> {
    if (!om) return this.registry.metrics();
    // As the collector rendered OpenMetrics with prom-client: counter families without `_total`.
    this.registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    try {
      return await this.registry.metrics();
    } finally {
      this.registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
      for (const m of this.registry.getMetricsAsArray()) if (m instanceof Counter && !m.name.endsWith('_total')) m.name = `${m.name}_total`;
    }
  }
  async close(): Promise<void> {}
}

const RESULT_NAMES = new Set(RESULT_METRICS.map((k) => METRICS[k].name.replace(/_total$/, '')));

/** The result families of an exposition: metadata lines, and sample → value with labels sorted. */
function resultPart(text: string): { meta: string[]; samples: Map<string, string> } {
  const meta: string[] = [];
  const samples = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line === '# EOF') continue;
    if (line.startsWith('#')) {
      if (RESULT_NAMES.has(line.split(' ')[2] ?? '')) meta.push(line);
      continue;
    }
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `an exposition line: ${line}`);
    const [, name = '', body = '', value = ''] = m;
    const family = name.replace(/_(bucket|sum|count|total)$/, '');
    if (!RESULT_NAMES.has(family) && !RESULT_NAMES.has(name)) continue;
    const labels = (body.match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? []).sort().join(',');
    assert.equal(samples.has(`${name}{${labels}}`), false, `one sample per series: ${line}`);
    samples.set(`${name}{${labels}}`, value);
  }
  return { meta: meta.sort(), samples };
}

const dnsAt = (t: number, resolver: string, side: DnsResult['side']): DnsResult => ({
  ...(mixedResults(t).find((r): r is DnsResult => r.type === 'dns') as DnsResult),
  resolver,
  side,
});

test('the exposition equals prom-client’s on real pushes: classic and OpenMetrics, one-of switches, consensus, sweep; promtool-clean', async () => {
  let now = Date.now();
  const oracle = new PromClientOutput();
  const c = await buildCollector({ plan: testPlan(), logger: false, outputs: [oracle], now: () => now, sweepIntervalMs: 3_600_000 });
  await c.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(c.app.server.address() as { port: number }).port}`;
  const push = async (results: CheckResult[], probe: { id: string; region: string }) => {
    const r = await request(`${url}/v1/results`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor(probe.id)}` },
      body: JSON.stringify(batchOf(results, probe)),
    });
    assert.equal(r.statusCode, 200, await r.body.text());
  };
  const scrape = async (om: boolean) =>
    (await request(`${url}/metrics`, { headers: om ? { accept: 'application/openmetrics-text;version=1.0.0' } : {} })).body.text();
  const compare = async (when: string) => {
    for (const om of [false, true]) {
      const got = resultPart(await scrape(om));
      const want = resultPart(await oracle.text(om));
      assert.ok(want.samples.size > 0, 'the oracle has series');
      assert.deepEqual(got.meta, want.meta, `${when}, ${om ? 'OpenMetrics' : 'classic'}: HELP/TYPE lines`);
      const diff = (a: Map<string, string>, b: Map<string, string>) => [...a].filter(([k, v]) => b.get(k) !== v).map(([k, v]) => `${k} ${v}`);
      assert.deepEqual(
        { extra: diff(got.samples, want.samples), missing: diff(want.samples, got.samples) },
        { extra: [], missing: [] },
        `${when}, ${om ? 'OpenMetrics' : 'classic'}: samples`,
      );
      assert.equal(got.samples.size, want.samples.size);
    }
  };
  try {
    const t = now;
    await push(mixedResults(t), { id: 'p-eu', region: 'eu' });
    await push(mixedResults(t), { id: 'p-us', region: 'us' });
    // A label value that needs escaping (a resolver's name is free text in the plan).
    await push([{ ...dnsAt(t, '10.9.9.9', 'old'), resolverName: 'quote " back \\ slash' } as CheckResult], { id: 'p-ap', region: 'ap' });
    await compare('after the first pushes');
    // One-of switches (answer side), a failed SMTP session, a second observation of each histogram.
    const smtp = mixedResults(t + 1000).find((r): r is SmtpResult => r.type === 'smtp') as SmtpResult;
    await push([dnsAt(t + 1000, '127.0.0.53', 'old'), dnsAt(t + 1000, '8.8.8.8', 'both'), { ...smtp, ok: false, errorClass: 'temp_fail', replyCode: 451 }], {
      id: 'p-eu',
      region: 'eu',
    });
    await compare('after one-of switches');
    // p-eu and p-ap go silent: their per-probe gauges go, their votes on fleet-wide verdicts too.
    now += testPlan().collector.probe_stale_after + 60_000;
    await push(mixedResults(now), { id: 'p-us', region: 'us' });
    assert.deepEqual(c.ingest.sweep().sort(), ['p-ap', 'p-eu']);
    await compare('after the sweep');

    const text = await scrape(false);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
    const om = await scrape(true);
    assert.ok(om.endsWith('\n# EOF\n') && !om.includes('\n\n'), 'OpenMetrics: no blank line, one # EOF at the end');
    assert.equal(om.split('# EOF').length, 2);
  } finally {
    await c.app.close();
  }
});

test('a scrape streams in bounded slices; a push between two slices leaves every family consistent', async () => {
  const store = new SeriesStore();
  const t = Date.now();
  const probe = { id: 'p', region: 'eu' };
  for (let i = 0; i < 5000; i++) store.apply(resultOps(probe, dnsAt(t, `10.0.${i >> 8}.${i & 255}`, 'old')));
  const lines = (await store.text()).split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  assert.ok(lines > 50_000, `${lines} lines`);

  const slices: string[] = [];
  let pushed = false;
  for await (const slice of store.stream(false)) {
    slices.push(slice);
    if (!pushed && slice.includes('mailprobe_dns_lookup_duration_seconds_bucket')) {
      pushed = true;
      // Between slices: a resolver's answer side switches (one-of), a new resolver appears.
      store.apply(resultOps(probe, dnsAt(t + 1, '10.0.0.0', 'new')));
      store.apply(resultOps(probe, dnsAt(t + 1, '10.99.0.1', 'new')));
    }
  }
  assert.ok(pushed);
  const most = Math.max(...slices.map((s) => s.split('\n').length));
  assert.ok(slices.length >= lines / 5000, `${slices.length} slices for ${lines} lines`);
  assert.ok(most <= 4096 + 20, `a slice holds at most ~4096 lines, the largest had ${most}`);
  const text = slices.join('');
  const side = text.split('\n').filter((l) => l.startsWith('mailprobe_dns_answer_side{') && l.includes('resolver="10.0.0.0"'));
  // The answer-side family was rendered after the switch: exactly one side, the new one.
  assert.deepEqual(
    side.map((l) => /side="(\w+)"/.exec(l)?.[1]),
    ['new'],
  );
  const { samples } = resultPart(text);
  const after = resultPart(await store.text());
  // Nothing is rendered twice; every series of the scrape is still held (only values may have moved on).
  for (const key of samples.keys()) assert.ok(after.samples.has(key), `${key} still held`);
});

test('the sweep removes a silent probe’s per-probe gauges from the store and keeps its counters and histograms', async () => {
  let now = Date.now();
  const c = await buildCollector({ plan: testPlan(), logger: false, now: () => now, sweepIntervalMs: 3_600_000 });
  try {
    const store = c.store;
    assert.ok(store);
    c.ingest.apply('p-eu', batchOf(mixedResults(now), { id: 'p-eu', region: 'eu' }));
    const before = resultPart(await store.text());
    const perProbe = [...before.samples.keys()].filter((k) => {
      const key = RESULT_METRICS.find((m) => METRICS[m].name === k.slice(0, k.indexOf('{')));
      return key !== undefined && (METRICS[key] as { perProbe?: boolean }).perProbe === true;
    });
    assert.ok(perProbe.length >= 10, `${perProbe.length} per-probe gauge series`);
    const sizeBefore = store.size;
    now += c.ingest.opts.probeStaleAfterMs + 1;
    assert.deepEqual(c.ingest.sweep(), ['p-eu']);
    const after = resultPart(await store.text());
    assert.deepEqual([...before.samples.keys()].filter((k) => !after.samples.has(k)).sort(), perProbe.sort(), 'exactly the per-probe gauges went');
    assert.equal(store.size, sizeBefore - perProbe.length);
    assert.equal(
      after.samples.get('mailprobe_checks_total{probe="p-eu",region="eu",result="success",type="dns"}'),
      before.samples.get('mailprobe_checks_total{probe="p-eu",region="eu",result="success",type="dns"}'),
    );
  } finally {
    await c.app.close();
  }
});

test('remote write sends from the same store /metrics renders: every sample on the wire equals the exposition, one series count', async () => {
  const got = new Map<string, number>();
  const rx = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      for (const s of decodeWriteRequest(Buffer.concat(chunks)).timeseries) {
        const { __name__: name = '', job, instance, ...labels } = s.labels;
        assert.deepEqual([job, instance], ['mailprobe-collector', 'store-test']);
        const body = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
          .sort()
          .join(',');
        const last = s.samples.at(-1);
        if (last) got.set(`${name}{${body}}`, last.value);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((ok) => rx.listen(0, '127.0.0.1', ok));
  const plan = testPlan({
    collector: {
      remote_write: { url: `http://127.0.0.1:${(rx.address() as { port: number }).port}/api/v1/write`, replica: 'store-test', flush_interval: '1s' },
    },
  });
  const c = await buildCollector({ plan, logger: false });
  try {
    const rw = c.ingest.outputs.find((o): o is RemoteWriteOutput => o instanceof RemoteWriteOutput);
    assert.ok(rw);
    const t = Date.now();
    c.ingest.apply('p-eu', batchOf(mixedResults(t), { id: 'p-eu', region: 'eu' }));
    c.ingest.apply('p-us', batchOf(mixedResults(t), { id: 'p-us', region: 'us' }));
    c.ingest.apply('p-eu', batchOf([dnsAt(t + 1, '8.8.8.8', 'new')], { id: 'p-eu', region: 'eu' }));
    await rw.flush();
    assert.equal(rw.seriesCount, c.store.size, 'one set of series');
    const { samples } = resultPart(await c.store.text());
    assert.ok(samples.size > 300, `${samples.size} samples`);
    const differing = [...samples].filter(([k, v]) => got.get(k) !== Number(v)).map(([k, v]) => `${k} /metrics ${v}, wire ${got.get(k)}`);
    assert.deepEqual(differing, []);
    // The switched answer side went out as a stale marker (NaN), the current one as 1.
    assert.ok(
      Number.isNaN(
        got.get('mailprobe_dns_answer_side{name="mail.company.test",probe="p-eu",region="eu",resolver="8.8.8.8",resolver_name="8.8.8.8",side="old",type="A"}'),
      ),
    );
  } finally {
    await c.app.close();
    await new Promise<void>((ok) => rx.close(() => ok()));
  }
});

test('the per-probe series limit counts on the store: fleet-wide series another probe created count for this probe too', async () => {
  const series = async (c: Awaited<ReturnType<typeof buildCollector>>, probe: string) => {
    const text = await c.registry.metrics();
    const m = new RegExp(`^mailprobe_collector_probe_series\\{probe="${probe}"\\} (\\d+)$`, 'm').exec(text);
    return Number(m?.[1]);
  };
  const t = Date.now();
  const first = await buildCollector({ plan: testPlan(), logger: false });
  first.ingest.apply('p-eu', batchOf(mixedResults(t), { id: 'p-eu', region: 'eu' }));
  const n = await series(first, 'p-eu');
  await first.app.close();
  assert.ok(n > 20, `${n} series for one interval`);

  const c = await buildCollector({ plan: testPlan({ collector: { max_series_per_probe: n } }), logger: false });
  try {
    c.ingest.apply('p-eu', batchOf(mixedResults(t), { id: 'p-eu', region: 'eu' }));
    // p-us reports the same servers and records (fleet-wide series p-eu created) plus one resolver more.
    const size = c.store.size;
    assert.throws(
      () => c.ingest.apply('p-us', batchOf([...mixedResults(t), dnsAt(t, '10.9.9.9', 'new')], { id: 'p-us', region: 'us' })),
      (e: Error) => /probe p-us has 0 series, this batch adds \d+, the limit is/.test(e.message),
    );
    assert.equal(c.store.size, size, 'a refused batch leaves no series');
    c.ingest.apply('p-us', batchOf(mixedResults(t), { id: 'p-us', region: 'us' }));
    assert.equal(await series(c, 'p-us'), n, 'the same count as p-eu: fleet-wide series included');
  } finally {
    await c.app.close();
  }
});
