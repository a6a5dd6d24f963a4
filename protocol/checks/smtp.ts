/**
 * The smtp check's contract: one SMTP session to one destination IP with every phase timed, and
 * the metrics it feeds.
 */
import { Type, type Static, type TNumber } from '@sinclair/typebox';
import { Duration, Hostname, obj } from '../settings.js';
import { b, defineCheck, failedFields, Label, LABEL_MAX, outcome, resultSchema, Seconds, Side, Text, type FailedRun } from './common.js';

export const SMTP_PHASES = ['connect', 'banner', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'quit'] as const;
export type SmtpPhase = (typeof SMTP_PHASES)[number];

export const SmtpResult = resultSchema(
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
    tlsa: Type.Optional(
      Type.Object(
        {
          match: Type.Boolean({ description: 'A published TLSA record matches the certificate this IP presented.' }),
          records: Type.Integer({ minimum: 1, maximum: 64, description: 'TLSA records published at _25._tcp of the mail host.' }),
          detail: Text(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  'One SMTP session to one destination IP, every phase timed.',
);
export type SmtpResult = Static<typeof SmtpResult>;

export interface SmtpTarget {
  ip: string;
  side: Side;
  port: number;
  /** rcpt (RSET after RCPT) or data (a small marked test message): probes.smtp.mode. */
  mode: 'rcpt' | 'data';
}

const failedSmtp = (t: SmtpTarget, run: FailedRun): SmtpResult => ({
  type: 'smtp',
  ...failedFields(run),
  ip: t.ip,
  side: t.side,
  port: t.port,
  mode: t.mode,
  phases: {},
});

/** Its settings: `probes.smtp` (the round-trip check sends with them too). */
export const SmtpSettings = obj(
  {
    /** Default 25. Use 587 (STARTTLS) or 465 (implicit TLS) where outbound 25 is blocked. */
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 25, errorMessage: 'must be a port from 1 to 65535' }),
    /** `rcpt` stops after RCPT (delivers nothing); `data` delivers a small marked message. Default rcpt. */
    mode: Type.Union([Type.Literal('rcpt'), Type.Literal('data')], { default: 'rcpt', errorMessage: 'must be "rcpt" or "data"' }),
    /** `opportunistic` STARTTLS if offered, `required` fails without it, `implicit` TLS on connect (465), `none`. Default opportunistic. */
    tls: Type.Union([Type.Literal('opportunistic'), Type.Literal('required'), Type.Literal('implicit'), Type.Literal('none')], {
      default: 'opportunistic',
      errorMessage: 'must be one of opportunistic, required, implicit, none',
    }),
    /** Envelope sender. Default probe@probes.invalid. */
    from: Type.String({ default: 'probe@probes.invalid', format: 'email-ish', errorMessage: 'must be an address such as probe@probes.example' }),
    /** Envelope recipient at the mail host. Default postmaster@<domain>. */
    to: Type.Optional(Type.String({ format: 'email-ish', errorMessage: 'must be an address such as postmaster@company.com' })),
    /** Name sent in EHLO. Default: the machine's host name. */
    helo: Type.Optional(Hostname('EHLO name.')),
    /** Optional AUTH; the password is read from the named environment variable. */
    auth: Type.Optional(
      Type.Object({ user: Type.String({ minLength: 1 }), pass_env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' }) }, { additionalProperties: false }),
    ),
    /** PEM file of extra CAs the server certificate may chain to (a private or lab CA). Default: the system CAs only. */
    ca_file: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of extra trusted CAs.' })),
    /** A TCP connect not done by then fails with connect_timeout. Default 5s. */
    connect_timeout: Duration('5s', 'TCP connect timeout.', '5m'),
    /** A greeting (after the TLS handshake on 465) not received by then fails with banner_timeout. Default 5s. */
    banner_timeout: Duration('5s', 'Greeting timeout.', '5m'),
  },
  'The smtp check.',
);

export const smtpDef = defineCheck({
  type: 'smtp',
  result: SmtpResult,
  settings: { probes: { smtp: SmtpSettings } },
  failed: (target: SmtpTarget, run) => [failedSmtp(target, run)],
  failedLike: (r, run) => failedSmtp(r, run),
  samples(r, ops) {
    const o = ops.at('ip', r.ip).at('side', r.side);
    for (const [phase, seconds] of Object.entries(r.phases)) {
      if (typeof seconds === 'number') o.at('phase', phase).observe('smtpDuration', seconds);
    }
    // A session is timed from its connect phase on (as the mean session of the recording rules).
    if (r.phases.connect !== undefined)
      o.observe(
        'smtpSessionDuration',
        Object.values(r.phases).reduce((a, v) => a + (v ?? 0), 0),
      );
    o.at('result', outcome(r)).inc('smtpChecks');
    o.set('smtpUp', b(r.ok));
    if (r.tls) {
      o.set('tlsCertExpiry', r.tls.certExpiry);
      o.set('tlsCertValid', b(r.tls.verified));
    } else if (r.errorClass === 'cert_invalid') {
      o.set('tlsCertValid', 0);
    }
    // Absent when no TLSA records are published (DANE not used) or no certificate was seen.
    if (r.tlsa) o.set('tlsaMatch', b(r.tlsa.match));
  },
});
