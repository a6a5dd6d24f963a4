/**
 * The rdns check's contract: reverse DNS and forward confirmation of one server IP, and the
 * metrics it feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { b, defineCheck, failedFields, Label, LABEL_MAX, resultSchema, Side, type FailedRun } from './common.js';

export const RdnsResult = resultSchema(
  'rdns',
  {
    ip: Label(),
    side: Side,
    ptrNames: Type.Array(Type.String({ maxLength: LABEL_MAX }), { maxItems: 32 }),
    fcrdns: Type.Boolean({ description: 'A PTR name resolves back to the same IP.' }),
    matchesMailHost: Type.Boolean(),
  },
  'Reverse DNS and forward confirmation of one server IP.',
);
export type RdnsResult = Static<typeof RdnsResult>;

export interface RdnsTarget {
  ip: string;
  side: Side;
}

const failedRdns = (t: RdnsTarget, run: FailedRun): RdnsResult => ({
  type: 'rdns',
  ...failedFields(run),
  ip: t.ip,
  side: t.side,
  ptrNames: [],
  fcrdns: false,
  matchesMailHost: false,
});

export const rdnsDef = defineCheck({
  type: 'rdns',
  result: RdnsResult,
  // It reads the mail host and the DNS client's settings (probes.dns), none of its own.
  settings: {},
  failed: (target: RdnsTarget, run) => [failedRdns(target, run)],
  failedLike: (r, run) => failedRdns(r, run),
  samples(r, ops) {
    const o = ops.at('ip', r.ip).at('side', r.side);
    o.set('fcrdnsOk', b(r.ok && r.fcrdns));
    o.set('ptrMatchesMailHost', b(r.matchesMailHost));
    // Once the mail host points at the IP: a PTR name is the mail host (known from the PTR lookup
    // alone, even when a forward lookup then failed), or a name of its own confirms now.
    o.set('fcrdnsOkWhenServed', b(r.matchesMailHost || (r.ok && r.fcrdns)));
    // The names, when the PTR lookup answered (a failed forward lookup keeps them; a failed PTR lookup keeps the last known).
    if (r.ok || r.ptrNames.length > 0) o.oneOf('ptrInfo', r.ptrNames.length > 0 ? r.ptrNames.join(',') : '(none)');
  },
});
