/**
 * The status output: feeds the accepted results to the status page's model. It needs the
 * results rather than sample operations (messages, PTR and certificate names are no samples),
 * so `apply` has nothing to do and nothing is ever removed from it by the silent-probe sweep:
 * the page shows a silent probe's last push and age instead.
 */
import type { CheckResult } from '../../protocol/results.js';
import type { ProbeInfo } from '../../protocol/wire.js';
import type { StatusModel } from '../status/model.js';
import type { Output } from './output.js';

export class StatusOutput implements Output {
  readonly name = 'status';
  constructor(readonly model: StatusModel) {}
  apply(): void {}
  results(probe: ProbeInfo, results: readonly CheckResult[]): void {
    this.model.accept(probe, results);
  }
  remove(): void {}
  async close(): Promise<void> {}
}
