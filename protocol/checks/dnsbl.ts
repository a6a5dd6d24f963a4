/**
 * The dnsbl check's contract: one server IP against one blocklist, and the metrics it feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Hostname } from '../settings.js';
import { b, defineCheck, failedFields, Label, resultSchema, Side, type FailedRun } from './common.js';

export const DnsblResult = resultSchema(
  'dnsbl',
  {
    ip: Label(),
    side: Side,
    list: Label(),
    listed: Type.Boolean(),
    answers: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
  },
  'One server IP against one blocklist.',
);
export type DnsblResult = Static<typeof DnsblResult>;

export interface DnsblTarget {
  ip: string;
  side: Side;
  list: string;
}

const failedDnsbl = (t: DnsblTarget, run: FailedRun): DnsblResult => ({
  type: 'dnsbl',
  ...failedFields(run),
  ip: t.ip,
  side: t.side,
  list: t.list,
  listed: false,
  answers: [],
});

export const dnsblDef = defineCheck({
  type: 'dnsbl',
  result: DnsblResult,
  settings: {
    cutover: {
      /** DNS blocklist zones to check each server IP against. Default none. */
      dnsbl: Type.Array(Hostname('A blocklist zone.'), { default: [], maxItems: 32 }),
    },
  },
  failed: (target: DnsblTarget, run) => [failedDnsbl(target, run)],
  failedLike: (r, run) => failedDnsbl(r, run),
  samples(r, ops) {
    const o = ops.at('ip', r.ip).at('side', r.side).at('list', r.list);
    // A refused or failed query says nothing about listing: keep the last known value.
    if (r.ok) o.set('dnsblListed', b(r.listed));
    else o.inc('dnsblErrors');
  },
});
