/**
 * The dns check's contract: one query of one record type through one resolver (or one
 * authoritative server, labelled `auth:<server>`), what a failed run reports for its target,
 * and the metrics a result feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnswerSide, defineCheck, failedFields, Label, LABEL_MAX, outcome, resultSchema, type FailedRun } from './common.js';

export const DNS_QTYPES = ['A', 'AAAA', 'MX'] as const;
export type DnsQtype = (typeof DNS_QTYPES)[number];

export const DnsResult = resultSchema(
  'dns',
  {
    resolver: Label({ description: 'Resolver label: "system", an address, "tls://…", "https://…", or "auth:<ns>" for an authoritative server.' }),
    resolverName: Type.Optional(Label({ description: 'The name the plan gives the resolver ("Google", "honest"); default: the label.' })),
    authoritative: Type.Boolean({ description: 'Queried an authoritative server directly, without recursion.' }),
    name: Label(),
    qtype: Type.Union([Type.Literal('A'), Type.Literal('AAAA'), Type.Literal('MX')]),
    transport: Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('dot'), Type.Literal('doh')]),
    rcode: Type.String({ maxLength: 16 }),
    answers: Type.Array(Type.String({ maxLength: LABEL_MAX }), { maxItems: 64 }),
    ttl: Type.Union([Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), Type.Null()], {
      description: 'Smallest TTL in the answer set (RFC 2181: at most 2^31 - 1).',
    }),
    side: AnswerSide,
  },
  'One query of one record type through one resolver.',
);
export type DnsResult = Static<typeof DnsResult>;

/** One question a dns target asks: a name and a record type. */
export interface DnsQuery {
  name: string;
  qtype: DnsQtype;
}

/**
 * A dns target: one resolver, or the authoritative servers (those of probes.authoritative by
 * their labels, or the zone's NS records found at run time when `servers` is empty).
 */
export type DnsTarget =
  | { kind: 'resolver'; resolver: string /** Its name on panels (default: the label). */; resolverName?: string; queries: readonly DnsQuery[] }
  | { kind: 'authoritative'; servers: readonly string[]; queries: readonly DnsQuery[] };

/** The transport a resolver label stands for. */
export function transportOf(label: string): DnsResult['transport'] {
  if (/^https?:\/\//.test(label)) return 'doh';
  if (label.startsWith('tls://')) return 'dot';
  return label.startsWith('tcp://') ? 'tcp' : 'udp';
}

/** Label of the authoritative side when no server is known (NS discovery failed). */
export const AUTH_NONE = 'auth:none';

/** A failed dns result for one resolver label and question. */
export function failedDns(resolver: string, resolverName: string, authoritative: boolean, q: DnsQuery, run: FailedRun, rcode = '-'): DnsResult {
  return {
    type: 'dns',
    ...failedFields(run),
    resolver,
    resolverName,
    authoritative,
    name: q.name,
    qtype: q.qtype,
    transport: transportOf(resolver),
    rcode,
    answers: [],
    ttl: null,
    // NXDOMAIN for the name itself is an answer (none); every other failure is an error.
    side: rcode === 'NXDOMAIN' ? 'none' : 'error',
  };
}

export const dnsDef = defineCheck({
  type: 'dns',
  result: DnsResult,
  settings: {
    'probes.dns': {
      /** Record types the dns check asks each resolver for: A and AAAA of the mail host, MX of the domain. Default [A, AAAA, MX]. */
      types: Type.Array(Type.Union([Type.Literal('A'), Type.Literal('AAAA'), Type.Literal('MX')], { errorMessage: 'must be A, AAAA or MX' }), {
        default: ['A', 'AAAA', 'MX'],
        minItems: 1,
        maxItems: 3,
        uniqueItems: true,
      }),
    },
  },
  failed(target: DnsTarget, run) {
    if (target.kind === 'resolver') return target.queries.map((q) => failedDns(target.resolver, target.resolverName ?? target.resolver, false, q, run));
    const labels = target.servers.length > 0 ? target.servers : [AUTH_NONE];
    return labels.flatMap((label) => target.queries.map((q) => failedDns(label, label, true, q, run)));
  },
  failedLike(r, run) {
    return { ...failedDns(r.resolver, r.resolverName ?? r.resolver, r.authoritative, r, run), transport: r.transport };
  },
  samples(r, ops) {
    // resolver_name is 1:1 with resolver in a plan: it adds no series, only the name to show.
    const o = ops.at('resolver', r.resolver).at('resolver_name', r.resolverName ?? r.resolver);
    o.observe('dnsLookupDuration', r.durationSeconds);
    o.at('result', outcome(r)).inc('dnsLookups');
    const named = o.at('name', r.name).at('type', r.qtype);
    named.oneOf('dnsAnswerSide', r.ok ? r.side : 'error');
    if (r.ok && r.ttl !== null) named.set('dnsTtl', r.ttl);
  },
});
