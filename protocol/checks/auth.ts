/**
 * The auth check's contract: one mail-authentication record check (SPF for a server IP, a DKIM
 * selector's key, DMARC, MTA-STS, TLSA), and the metrics it feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Hostname } from '../settings.js';
import { b, defineCheck, failedFields, Label, resultSchema, Side, Text, type FailedRun } from './common.js';

export const AUTH_METHODS = ['spf', 'dkim', 'dmarc', 'mta-sts', 'tlsa'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export const AuthResult = resultSchema(
  'auth',
  {
    method: Type.Union([Type.Literal('spf'), Type.Literal('dkim'), Type.Literal('dmarc'), Type.Literal('mta-sts'), Type.Literal('tlsa')]),
    /** The IP (spf), selector (dkim), domain (dmarc, mta-sts) or name (tlsa) checked. */
    subject: Label(),
    side: Type.Optional(Side),
    pass: Type.Boolean(),
    detail: Type.Optional(Text()),
    /** mta-sts: the mode of the published policy, when one was fetched and parsed. */
    mtaStsMode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('testing'), Type.Literal('none')])),
  },
  'One mail-authentication record check.',
);
export type AuthResult = Static<typeof AuthResult>;

/** What one auth run checks: the method and its subject (IP, selector, domain or name); spf carries the IP's side. */
export type AuthTarget = { method: 'spf'; subject: string; side: Side } | { method: Exclude<AuthMethod, 'spf'>; subject: string };

const failedAuth = (t: { method: AuthMethod; subject: string; side?: Side | undefined }, run: FailedRun): AuthResult => ({
  type: 'auth',
  ...failedFields(run),
  method: t.method,
  subject: t.subject,
  ...(t.side !== undefined ? { side: t.side } : {}),
  pass: false,
});

/** Its settings: the selectors and the SPF domain of the move, and how strict the checks are. */
export const AUTH_SETTINGS = {
  cutover: {
    /** DKIM selectors to check. Default none. */
    dkim_selectors: Type.Array(Type.String({ pattern: '^[A-Za-z0-9._-]{1,63}$', errorMessage: 'must be a DNS label' }), { default: [], maxItems: 16 }),
    /** The envelope (MAIL FROM) domain SPF is evaluated for. Default: domain. */
    spf_domain: Type.Optional(Hostname('SPF domain.')),
  },
  'probes.dns': {
    /** URL of the MTA-STS policy; `{domain}` is replaced. Default https://mta-sts.{domain}/.well-known/mta-sts.txt. */
    mta_sts_url: Type.String({ minLength: 1, default: 'https://mta-sts.{domain}/.well-known/mta-sts.txt' }),
    /** DKIM keys shorter than this many bits count as broken. Default 1024. */
    dkim_min_bits: Type.Integer({ minimum: 512, maximum: 16384, default: 1024 }),
  },
};

export const authDef = defineCheck({
  type: 'auth',
  result: AuthResult,
  settings: AUTH_SETTINGS,
  failed: (target: AuthTarget, run) => [failedAuth(target, run)],
  failedLike: (r, run) => failedAuth(r, run),
  samples(r, ops) {
    const v = b(r.ok && r.pass);
    switch (r.method) {
      case 'spf':
        return ops
          .at('ip', r.subject)
          .at('side', r.side ?? 'old')
          .set('spfPass', v);
      case 'dkim':
        return ops.at('selector', r.subject).set('dkimKeyPresent', v);
      case 'dmarc':
        return ops.at('domain', r.subject).set('dmarcPresent', v);
      case 'mta-sts': {
        const o = ops.at('domain', r.subject);
        o.set('mtaStsOk', v);
        // A failed fetch says nothing about the mode: keep the last known.
        if (r.ok) o.oneOf('mtaStsMode', r.mtaStsMode ?? 'absent');
        return;
      }
      case 'tlsa':
        return ops.at('name', r.subject).set('tlsaPresent', v);
      default: {
        const never: never = r.method;
        throw new Error(`auth method ${String(never)} has no metric`);
      }
    }
  },
});
