// Labels are typed by the metric catalogue (protocol/metrics.ts): `npm run typecheck` compiles
// this file, and every `@ts-expect-error` below must meet an error, so the check fails the day a
// wrong or missing label compiles again (TypeScript reports an unused `@ts-expect-error`). Never
// run; the test runner reads only *.test.ts.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Ops } from '../../protocol/checks/common.js';
import { METRICS } from '../../protocol/metrics.js';
import { createMetric, type CounterOf, type GaugeOf, type HistogramOf } from '../../protocol/prom.js';

export function sampleOperations(ops: Ops): void {
  const smtp = ops.at('ip', '192.0.2.1').at('side', 'old');
  smtp.set('smtpUp', 1);
  smtp.at('result', 'success').inc('smtpChecks');
  smtp.at('phase', 'banner').observe('smtpDuration', 0.1);
  ops.at('resolver', '9.9.9.9').at('resolver_name', 'Quad9').at('name', 'mail.example').at('type', 'A').oneOf('dnsAnswerSide', 'new');
  // Labels the frame holds beyond the metric's are not the metric's (the frame is shared by a result's operations).
  smtp.at('phase', 'banner').set('smtpUp', 1);

  // @ts-expect-error a missing label (side)
  ops.at('ip', '192.0.2.1').set('smtpUp', 1);
  // @ts-expect-error a missing label (result): labels set for one operation are not in the type of the writer before
  smtp.inc('smtpChecks');
  // @ts-expect-error a misspelt label
  ops.at('ip', '192.0.2.1').at('sied', 'old');
  // @ts-expect-error a label value is a string
  ops.at('ip', 1);
  // @ts-expect-error a counter written as a gauge
  smtp.at('result', 'success').set('smtpChecks', 1);
  // @ts-expect-error a gauge observed as a histogram
  smtp.observe('smtpUp', 1);
  // @ts-expect-error a one-of gauge is written with oneOf, not set
  smtp.set('ptrInfo', 1);
  // @ts-expect-error only one-of gauges are written as one-of
  smtp.oneOf('smtpUp', 'old');
  // @ts-expect-error a key that is not in the catalogue
  smtp.set('smtpDown', 1);
  // @ts-expect-error a metric that results do not feed (the collector's own)
  ops.at('result', 'accepted').inc('collectorBatches');
}

export function catalogueMetrics(registry: Registry): void {
  const pushes = createMetric(METRICS.probePushes, registry);
  pushes.inc({ region: 'eu', probe: 'p1', collector: 'http://c', result: 'accepted' });
  // @ts-expect-error a missing label (result), which prom-client's own types would take
  pushes.inc({ region: 'eu', probe: 'p1', collector: 'http://c' });
  // @ts-expect-error a label the entry does not have
  pushes.inc({ region: 'eu', probe: 'p1', collector: 'http://c', result: 'accepted', code: '500' });

  const results = createMetric(METRICS.collectorResults, registry);
  results.inc(3);
  // @ts-expect-error a metric without labels takes none
  results.inc({ result: 'accepted' });

  const window = createMetric(METRICS.cutoverWindowStart, registry);
  window.set(1);
  // @ts-expect-error a gauge has no observe
  window.observe(1);

  const duration = createMetric(METRICS.probeCheckDuration, registry);
  duration.observe({ region: 'eu', probe: 'p1', type: 'smtp' }, 0.5);
  // @ts-expect-error a histogram has no set
  duration.set({ region: 'eu', probe: 'p1', type: 'smtp' }, 0.5);
}

// The typed views are what prom-client's classes do (createMetric casts to them).
export const implemented: [CounterOf<'a'>, GaugeOf<'a'>, HistogramOf<'a'>, CounterOf<never>, GaugeOf<never>, HistogramOf<never>] = [
  new Counter<'a'>({ name: 'c', help: 'c', labelNames: ['a'] }),
  new Gauge<'a'>({ name: 'g', help: 'g', labelNames: ['a'] }),
  new Histogram<'a'>({ name: 'h', help: 'h', labelNames: ['a'] }),
  new Counter({ name: 'c0', help: 'c0' }),
  new Gauge({ name: 'g0', help: 'g0' }),
  new Histogram({ name: 'h0', help: 'h0' }),
];
