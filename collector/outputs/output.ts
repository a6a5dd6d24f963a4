/**
 * Where accepted samples go. The series store behind /metrics (collector/store/) is one output; a remote-write client can be
 * another; both can run at once. Outputs receive operations already validated and bounded.
 */
import type { Labels, SampleOps } from '../samples.js';
import type { MetricKey } from '../../protocol/metrics.js';
import type { CheckResult } from '../../protocol/results.js';
import type { ProbeInfo } from '../../protocol/wire.js';

export interface Output {
  readonly name: string;
  apply(ops: SampleOps): void;
  /**
   * The accepted results themselves, after `apply`, for outputs that need more than samples
   * (the status page shows messages, PTR names, certificate names). Optional.
   */
  results?(probe: ProbeInfo, results: readonly CheckResult[]): void;
  /** Removes one series (a silent probe's gauge). */
  remove(metric: MetricKey, labels: Labels): void;
  close(): Promise<void>;
}
