/**
 * The ttl analysis' contract: the TTL behaviour of one resolver for the mail host, derived by
 * the probe from its own dns results over time, and the metrics it feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration } from '../settings.js';
import { b, defineCheck, failedFields, Label, resultSchema, Seconds } from './common.js';

export const TtlResult = resultSchema(
  'ttl',
  {
    resolver: Label(),
    resolverName: Type.Optional(Label({ description: 'The name the plan gives the resolver; default: the label.' })),
    name: Label(),
    staleSeconds: Seconds('How long past change + old TTL the resolver still answered the old set.'),
    violation: Type.Boolean(),
    tested: Type.Optional(
      Type.Boolean({ description: 'Observed across a TTL expiry (answered after an earlier answer had run out), so whether it honours the TTL is known.' }),
    ),
    extensionSeconds: Seconds('How far the reported TTL exceeded the authoritative one.'),
    safeToSwitchAt: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 4_102_444_800_000 }), Type.Null()])),
    safeToDecommission: Type.Optional(Type.Boolean()),
  },
  'TTL behaviour of one resolver, derived from authoritative answers over time.',
);
export type TtlResult = Static<typeof TtlResult>;

export interface TtlTarget {
  /** The mail host. */
  name: string;
  /** The record type analysed: A when the plan has IPv4 servers, else AAAA. */
  qtype: 'A' | 'AAAA';
  /** Labels of the resolvers the analysis reports on (probes.resolvers). */
  resolvers: readonly string[];
}

export const ttlDef = defineCheck({
  type: 'ttl',
  result: TtlResult,
  settings: {
    probes: {
      /** With no resolver answering the old IP for this long, decommissioning is safe. Default 24h. */
      decommission_quiet: Duration('24h', 'Quiet time before decommissioning is safe.', '30d'),
    },
    'probes.dns': {
      /** Slack for probe timing before a resolver counts as violating TTL. Default 2s. */
      ttl_allowance: Duration('2s', 'Slack for probe timing before a TTL violation is flagged.'),
      /** How far back the ttl analysis reads dns results on its first run. Default 2d. */
      ttl_lookback: Duration('2d', 'How far back the ttl analysis reads on its first run.', '30d'),
    },
  },
  failed(target: TtlTarget, run) {
    return target.resolvers.map((resolver) => ({
      type: 'ttl' as const,
      ...failedFields(run),
      resolver,
      name: target.name,
      staleSeconds: 0,
      violation: false,
      extensionSeconds: 0,
    }));
  },
  failedLike(r, run) {
    return {
      type: 'ttl' as const,
      ...failedFields(run),
      resolver: r.resolver,
      ...(r.resolverName === undefined ? {} : { resolverName: r.resolverName }),
      name: r.name,
      staleSeconds: 0,
      violation: false,
      extensionSeconds: 0,
    };
  },
  samples(r, ops) {
    // A failed analysis says nothing about the resolver: keep the last known figures.
    if (!r.ok) return;
    const named = ops.at('name', r.name);
    const o = named.at('resolver', r.resolver).at('resolver_name', r.resolverName ?? r.resolver);
    o.set('dnsResolverStale', r.staleSeconds);
    o.set('dnsTtlViolation', b(r.violation));
    if (r.tested !== undefined) o.set('dnsTtlTested', b(r.tested));
    o.set('dnsTtlExtension', r.extensionSeconds);
    if (r.safeToSwitchAt !== undefined && r.safeToSwitchAt !== null) named.set('safeToSwitch', r.safeToSwitchAt / 1000);
    if (r.safeToDecommission !== undefined) named.set('safeToDecommission', b(r.safeToDecommission));
  },
});
