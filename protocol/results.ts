/**
 * Result types of every check (DESIGN §4), as TypeBox schemas shared by probe and collector.
 *
 * A failed check is data: `ok: false` with `phase`, `errorClass`, `code` and `message`.
 * Strings that become label values are bounded here so the collector can reject before it
 * allocates a series.
 */
import { Type, type Static, type TNumber, type TProperties } from '@sinclair/typebox';

/** Longest string accepted in a field that becomes a label value. */
export const LABEL_MAX = 256;
/** Longest free-text field (messages, banners). */
export const TEXT_MAX = 2048;

const Label = (opts: { description?: string } = {}) => Type.String({ minLength: 1, maxLength: LABEL_MAX, ...opts });
const Text = () => Type.String({ maxLength: TEXT_MAX });
const Seconds = (description: string) => Type.Number({ minimum: 0, maximum: 86_400 * 30, description });

export const SIDES = ['old', 'new'] as const;
export const Side = Type.Union(SIDES.map((s) => Type.Literal(s)));
export type Side = Static<typeof Side>;

/** How a DNS answer set compares with the plan. */
export const ANSWER_SIDES = ['old', 'new', 'both', 'other', 'none', 'error'] as const;
export const AnswerSide = Type.Union(ANSWER_SIDES.map((s) => Type.Literal(s)));
export type AnswerSide = Static<typeof AnswerSide>;

/** Error classes of all checks; the collector uses them as the `result` label. */
export const ERROR_CLASSES = [
  // SMTP (issue: smtp check)
  'connect_refused',
  'connect_timeout',
  'banner_timeout',
  'tls_error',
  'cert_invalid',
  'auth_failed',
  'temp_fail',
  'perm_fail',
  'protocol',
  'timeout',
  // DNS
  'servfail',
  'nxdomain',
  'refused',
  'bad_response',
  'network',
  // blocklists: the list refused to answer (127.255.255.x)
  'dnsbl_refused',
  // round trip
  'lost',
  // a check threw: a bug, reported rather than crashing the probe
  'internal',
] as const;
export const ErrorClass = Type.Union(ERROR_CLASSES.map((s) => Type.Literal(s)));
export type ErrorClass = Static<typeof ErrorClass>;

const base = {
  /** When the check started, Unix milliseconds. */
  startedAt: Type.Integer({ minimum: 0, maximum: 4_102_444_800_000, description: 'When the check started, Unix milliseconds (before 2100).' }),
  durationSeconds: Seconds('How long the whole check took.'),
  ok: Type.Boolean(),
  phase: Type.Optional(Type.String({ maxLength: 64, description: 'Where a failed check stopped.' })),
  errorClass: Type.Optional(ErrorClass),
  code: Type.Optional(Type.String({ maxLength: 64, description: 'Stable error code from the check catalogue.' })),
  message: Type.Optional(Text()),
};

function result<T extends string, P extends TProperties>(type: T, props: P, description: string) {
  return Type.Object({ type: Type.Literal(type), ...base, ...props }, { additionalProperties: false, description });
}

export const DnsResult = result(
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
    ttl: Type.Union([Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), Type.Null()], { description: 'Smallest TTL in the answer set (RFC 2181: at most 2^31 - 1).' }),
    side: AnswerSide,
  },
  'One query of one record type through one resolver.',
);

export const TtlResult = result(
  'ttl',
  {
    resolver: Label(),
    resolverName: Type.Optional(Label({ description: 'The name the plan gives the resolver; default: the label.' })),
    name: Label(),
    staleSeconds: Seconds('How long past change + old TTL the resolver still answered the old set.'),
    violation: Type.Boolean(),
    tested: Type.Optional(Type.Boolean({ description: 'Observed across a TTL expiry (answered after an earlier answer had run out), so whether it honours the TTL is known.' })),
    extensionSeconds: Seconds('How far the reported TTL exceeded the authoritative one.'),
    safeToSwitchAt: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 4_102_444_800_000 }), Type.Null()])),
    safeToDecommission: Type.Optional(Type.Boolean()),
  },
  'TTL behaviour of one resolver, derived from authoritative answers over time.',
);

export const RdnsResult = result(
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

export const AuthResult = result(
  'auth',
  {
    method: Type.Union([
      Type.Literal('spf'),
      Type.Literal('dkim'),
      Type.Literal('dmarc'),
      Type.Literal('mta-sts'),
      Type.Literal('tlsa'),
    ]),
    /** The IP (spf), selector (dkim), domain (dmarc, mta-sts) or name (tlsa) checked. */
    subject: Label(),
    side: Type.Optional(Side),
    pass: Type.Boolean(),
    detail: Type.Optional(Text()),
  },
  'One mail-authentication record check.',
);

export const DnsblResult = result(
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

export const SMTP_PHASES = ['connect', 'banner', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'quit'] as const;
export type SmtpPhase = (typeof SMTP_PHASES)[number];

export const SmtpResult = result(
  'smtp',
  {
    ip: Label(),
    side: Side,
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    mode: Type.Union([Type.Literal('rcpt'), Type.Literal('data')]),
    phases: Type.Partial(
      Type.Object(Object.fromEntries(SMTP_PHASES.map((p) => [p, Seconds(`Duration of the ${p} phase.`)])) as unknown as Record<SmtpPhase, TNumber>, {
        additionalProperties: false,
      }),
    ),
    replyCode: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    enhancedCode: Type.Optional(Type.String({ maxLength: 16 })),
    banner: Type.Optional(Text()),
    bannerHost: Type.Optional(Type.String({ maxLength: LABEL_MAX })),
    ehloHost: Type.Optional(Type.String({ maxLength: LABEL_MAX })),
    tls: Type.Optional(
      Type.Object(
        {
          version: Type.String({ maxLength: 16 }),
          certNames: Type.Array(Type.String({ maxLength: LABEL_MAX }), { maxItems: 64 }),
          certExpiry: Type.Integer({ minimum: 0, maximum: 4_102_444_800, description: 'Unix seconds (1970 to 2100).' }),
          verified: Type.Boolean({ description: 'The chain and name verify for the mail host.' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  'One SMTP session to one destination IP, every phase timed.',
);

export const VERDICTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy'] as const;
export const Verdict = Type.Union(VERDICTS.map((s) => Type.Literal(s)));

export const RoundtripResult = result(
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

export const CheckResult = Type.Union([DnsResult, TtlResult, RdnsResult, AuthResult, DnsblResult, SmtpResult, RoundtripResult]);
export type CheckResult = Static<typeof CheckResult>;
export type DnsResult = Static<typeof DnsResult>;
export type TtlResult = Static<typeof TtlResult>;
export type RdnsResult = Static<typeof RdnsResult>;
export type AuthResult = Static<typeof AuthResult>;
export type DnsblResult = Static<typeof DnsblResult>;
export type SmtpResult = Static<typeof SmtpResult>;
export type RoundtripResult = Static<typeof RoundtripResult>;
export type CheckType = CheckResult['type'];
export const CHECK_TYPES = ['dns', 'ttl', 'rdns', 'auth', 'dnsbl', 'smtp', 'roundtrip'] as const satisfies readonly CheckType[];
