/**
 * The smtp check's contract: one SMTP session to one destination IP with every phase timed, and
 * the metrics it feeds.
 */
import { Type, type Static, type TNumber } from '@sinclair/typebox';
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

export const smtpDef = defineCheck({
  type: 'smtp',
  result: SmtpResult,
  failed: (target: SmtpTarget, run) => [failedSmtp(target, run)],
  failedLike: (r, run) => failedSmtp(r, run),
  samples(r, ops) {
    const l = { ...ops.rp, ip: r.ip, side: r.side };
    for (const [phase, seconds] of Object.entries(r.phases)) {
      if (typeof seconds === 'number') ops.observe('smtpDuration', { ...l, phase }, seconds);
    }
    // A session is timed from its connect phase on (as the mean session of the recording rules).
    if (r.phases.connect !== undefined)
      ops.observe(
        'smtpSessionDuration',
        l,
        Object.values(r.phases).reduce((a, v) => a + (v ?? 0), 0),
      );
    ops.inc('smtpChecks', { ...l, result: outcome(r) });
    ops.set('smtpUp', l, b(r.ok));
    if (r.tls) {
      ops.set('tlsCertExpiry', { ip: r.ip, side: r.side }, r.tls.certExpiry);
      ops.set('tlsCertValid', { ip: r.ip, side: r.side }, b(r.tls.verified));
    } else if (r.errorClass === 'cert_invalid') {
      ops.set('tlsCertValid', { ip: r.ip, side: r.side }, 0);
    }
    // Absent when no TLSA records are published (DANE not used) or no certificate was seen.
    if (r.tlsa) ops.set('tlsaMatch', { ip: r.ip, side: r.side }, b(r.tlsa.match));
  },
});
