/**
 * The probe side of the mta type. A probe follows no mail server log, so the default registry has
 * no mta targets; `mailprobe mta-log` (probe/mtalog/index.ts) registers {@link mtaLogCheck} over
 * its tally, whose run hands the interval's counts to the probe runtime, which spools, batches
 * and pushes them like any check's results.
 */
import type { CheckSpec } from '../check.js';
import type { MtaTarget } from '../../protocol/checks/mta.js';
import type { Tally } from '../mtalog/tally.js';

/** The default registry's entry: no targets (the log follower registers its own). */
export const mtaCheck: CheckSpec<'mta', null> = {
  type: 'mta',
  targets: () => [],
  run: async () => {
    throw new Error('the mta check runs only under mailprobe mta-log');
  },
};

/** The follower's check: one target (its server IPs); each run drains the tally. */
export function mtaLogCheck(tally: Tally, target: MtaTarget): CheckSpec<'mta', null> {
  return {
    type: 'mta',
    targets: () => [{ key: 'mta-log', target, settings: null }],
    run: async (_t, _s, ctx) => ({ type: 'mta', startedAt: ctx.now(), durationSeconds: 0, ok: true, ...tally.drain(ctx.now()) }),
  };
}
