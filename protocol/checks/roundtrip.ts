/**
 * The roundtrip check's contract: one signed test message sent via a destination IP and received
 * (or not) at the sink, and the metrics it feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineCheck, failedFields, Label, LABEL_MAX, resultSchema, Seconds, Side, type FailedRun } from './common.js';

export const VERDICTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy'] as const;
export const Verdict = Type.Union(VERDICTS.map((s) => Type.Literal(s)));

export const RoundtripResult = resultSchema(
  'roundtrip',
  {
    viaIp: Label(),
    side: Side,
    messageId: Type.String({ maxLength: LABEL_MAX }),
    delivered: Type.Boolean(),
    latencySeconds: Type.Optional(Seconds('Arrival minus send time.')),
    sameClock: Type.Boolean({ description: 'Sender and sink share one clock (same host).' }),
    deliveringIp: Type.Optional(Type.String({ maxLength: 64 })),
    helo: Type.Optional(Type.String({ maxLength: LABEL_MAX })),
    verdicts: Type.Optional(
      Type.Object(
        { spf: Verdict, dkim: Verdict, dmarc: Verdict, fcrdns: Type.Union([Type.Literal('pass'), Type.Literal('fail')]) },
        { additionalProperties: false },
      ),
    ),
  },
  'One signed test message sent via a destination IP and received (or not) at the sink.',
);
export type RoundtripResult = Static<typeof RoundtripResult>;

export interface RoundtripTarget {
  ip: string;
  side: Side;
  port: number;
  /** The sink runs in this probe (one clock for send and arrival): no probes.roundtrip.sink.url. */
  sameClock: boolean;
}

const failedRoundtrip = (t: { ip: string; side: RoundtripTarget['side']; sameClock: boolean }, run: FailedRun): RoundtripResult => ({
  type: 'roundtrip',
  ...failedFields(run),
  viaIp: t.ip,
  side: t.side,
  messageId: '',
  delivered: false,
  sameClock: t.sameClock,
});

export const roundtripDef = defineCheck({
  type: 'roundtrip',
  result: RoundtripResult,
  failed: (target: RoundtripTarget, run) => [failedRoundtrip(target, run)],
  failedLike: (r, run) => failedRoundtrip({ ip: r.viaIp, side: r.side, sameClock: r.sameClock }, run),
  samples(r, ops) {
    const l = { ...ops.rp, via_ip: r.viaIp, side: r.side };
    if (r.delivered && r.latencySeconds !== undefined) ops.observe('roundtripDuration', l, r.latencySeconds);
    // lost: sent but not arrived by the deadline; failed: the server did not take it (or the check could not send).
    ops.inc('roundtrips', { ...l, result: r.delivered ? 'delivered' : r.errorClass === 'lost' ? 'lost' : 'failed' });
    if (r.verdicts) {
      for (const [method, verdict] of Object.entries(r.verdicts)) ops.oneOf('roundtripAuth', { via_ip: r.viaIp, method }, verdict);
    }
  },
});
