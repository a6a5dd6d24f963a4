/**
 * Results → sample operations, as the collector's outputs see them. Which result field feeds
 * which metric of the catalogue is part of each check's definition (`protocol/checks/<type>.ts`,
 * its `samples`); outputs (the series store behind /metrics, remote write) only apply operations.
 */
import { METRICS, type MetricKey } from '../protocol/metrics.js';
import type { Labels } from '../protocol/checks/common.js';

export { resultOps } from '../protocol/checks/index.js';
export type { Labels, ProbeRef, SampleOp } from '../protocol/checks/common.js';

/** A stable key of one series. */
export function seriesKey(metric: MetricKey, labels: Labels, extra?: [string, string]): string {
  const names = METRICS[metric].labels;
  let key = metric;
  for (const n of names) key += `\u0000${n === extra?.[0] ? extra[1] : (labels[n] ?? '')}`;
  return key;
}
