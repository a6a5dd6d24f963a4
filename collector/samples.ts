/**
 * Results → sample operations, as the collector's outputs see them. Which result field feeds
 * which metric of the catalogue is part of each check's definition (`protocol/checks/<type>.ts`,
 * its `samples`); outputs (the series store behind /metrics, remote write) only apply operations,
 * held as columns ({@link SampleOps}) without an object per operation or label set.
 */
import { METRICS, type MetricKey } from '../protocol/metrics.js';
import type { Labels } from '../protocol/checks/common.js';

export { resultOps } from '../protocol/checks/index.js';
export { oneOfAt, SampleOps } from '../protocol/checks/common.js';
export type { Labels, OpKind, ProbeRef, SampleOp } from '../protocol/checks/common.js';

/**
 * A stable key of one series from its label values in the catalogue's order, as
 * {@link SampleOps} holds them at `at` (the value at `skip`, a one-of gauge's own label, left out).
 */
export function seriesKeyAt(metric: MetricKey, values: readonly (string | undefined)[], at: number, skip = -1): string {
  const n = METRICS[metric].labels.length;
  let key = metric;
  for (let j = 0; j < n; j++) key += `\u0000${j === skip ? '' : (values[at + j] ?? '')}`;
  return key;
}

/** The same key of a label set by name (`extra`: one label given another value). */
export function seriesKey(metric: MetricKey, labels: Labels, extra?: [string, string]): string {
  const values = (METRICS[metric].labels as readonly string[]).map((n) => (n === extra?.[0] ? extra[1] : labels[n]));
  return seriesKeyAt(metric, values, 0);
}
