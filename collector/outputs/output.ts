/**
 * Where accepted samples go. The /metrics registry is one output; a remote-write client can be
 * another; both can run at once. Outputs receive operations already validated and bounded.
 */
import type { Labels, SampleOp } from '../samples.js';
import type { MetricKey } from '../../protocol/metrics.js';

export interface Output {
  readonly name: string;
  apply(ops: readonly SampleOp[]): void;
  /** Removes one series (a silent probe's gauge). */
  remove(metric: MetricKey, labels: Labels): void;
  close(): Promise<void>;
}
