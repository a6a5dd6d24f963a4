// Labels are typed by the metric catalogue (protocol/metrics.ts): `npm run typecheck` compiles
// this file, and every `@ts-expect-error` below must meet an error, so the check fails the day a
// wrong or missing label compiles again (TypeScript reports an unused `@ts-expect-error`). Never
// run; the test runner reads only *.test.ts.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Ops } from '../../protocol/checks/common.js';
import { METRICS, type LabelsOf } from '../../protocol/metrics.js';
import { createMetric, type CounterOf, type GaugeOf, type HistogramOf } from '../../protocol/prom.js';

export function sampleOperations(ops: Ops): void {
  const smtp = { ...ops.rp, ip: '192.0.2.1', side: 'old' };
  ops.set('smtpUp', smtp, 1);
  ops.inc('smtpChecks', { ...smtp, result: 'success' });
  ops.observe('smtpDuration', { ...smtp, phase: 'banner' }, 0.1);
  ops.oneOf('dnsAnswerSide', { ...ops.rp, resolver: '9.9.9.9', resolver_name: 'Quad9', name: 'mail.example', type: 'A' }, 'new');

  // @ts-expect-error a missing label (side)
  ops.set('smtpUp', { ...ops.rp, ip: '192.0.2.1' }, 1);
  // @ts-expect-error a label the entry does not have
  ops.set('smtpUp', { ...smtp, phase: 'banner' }, 1);
  // @ts-expect-error a misspelt label
  ops.set('tlsCertValid', { ip: '192.0.2.1', sied: 'old' }, 1);
  // @ts-expect-error a counter written as a gauge
  ops.set('smtpChecks', { ...smtp, result: 'success' }, 1);
  // @ts-expect-error a gauge observed as a histogram
  ops.observe('smtpUp', smtp, 1);
  // @ts-expect-error the one-of label is the value, not a label
  ops.oneOf('ptrInfo', { ip: '192.0.2.1', side: 'old', ptr: 'mail.example' }, 'mail.example');
  // @ts-expect-error only one-of gauges are written as one-of
  ops.oneOf('smtpUp', { ...ops.rp, ip: '192.0.2.1' }, 'old');
  // @ts-expect-error a key that is not in the catalogue
  ops.set('smtpDown', smtp, 1);
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

// A label set names every label of its entry.
export const tlsLabels: LabelsOf<'tlsCertValid'> = { ip: '192.0.2.1', side: 'new' };
// @ts-expect-error and only those
export const tooMany: LabelsOf<'tlsCertValid'> = { ip: '192.0.2.1', side: 'new', probe: 'p1' };
