/**
 * smtp check: one SMTP session to one destination IP with the TLS name set to the
 * mail host, every phase timed (probe/smtp/session.ts), in `rcpt` mode (RSET after RCPT, delivers
 * nothing) or `data` mode (a small marked test message).
 *
 * A certificate that does not verify for the mail host ends the session after TLS with
 * cert_invalid (names, expiry and version are still recorded) and credentials are never sent
 * over it.
 *
 * With a certificate seen, the TLSA records of the mail host (`_25._tcp`) are looked up
 * after the session and matched against it (probe/smtp/dane.ts): does this IP pass DANE?
 */
import { performance } from 'node:perf_hooks';
import { readFile } from '../../config/files.js';
import type { PlanConfig } from '../../config/schema.js';
import { text } from '../../protocol/checks/common.js';
import type { SmtpResult, SmtpTarget } from '../../protocol/checks/smtp.js';
import { failure } from '../../protocol/failures.js';
import type { CheckContext, CheckSpec } from '../check.js';
import { CheckFailure } from '../errors.js';
import { recordsOf } from '../dns/client.js';
import { dnsSettings, lookupClient, type DnsSettings } from '../dns/lookup.js';
import { parseTlsa, tlsaMatch, type TlsaRecord } from '../smtp/dane.js';
import { composeMessage, defaultHelo } from '../smtp/message.js';
import { enhancedCode, replyCode, replyHost, SessionError, TimedSession, type TlsMode } from '../smtp/session.js';
import { newMessageId } from '../smtp/signing.js';
import { bareName } from '../../protocol/dns-name.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { readFileSync } = process.getBuiltinModule('node:fs');

export type { SmtpTarget };

export interface SmtpSettings {
  /** The mail host: TLS server name and the name the certificate must verify for. */
  mailHost: string;
  mode: 'rcpt' | 'data';
  tls: TlsMode;
  from: string;
  to: string;
  helo: string;
  auth?: { user: string; passEnv: string } | undefined;
  /** PEM file of extra trusted CAs. */
  caFile?: string | undefined;
  connectTimeoutMs: number;
  bannerTimeoutMs: number;
  /** Longest wait for one reply. */
  commandTimeoutMs: number;
  /** Where the TLSA records of the mail host are looked up (DANE matching); none: not checked. */
  tlsaLookup?: DnsSettings | undefined;
}

const sec = (ms: number): number => Math.round(ms * 1000) / 1e6;

/** Reads a CA file once per path (the plan is fixed for the process). */
const caCache = new Map<string, Promise<Buffer>>();
export function readCa(path: string | undefined): Promise<Buffer | undefined> {
  if (!path) return Promise.resolve(undefined);
  let p = caCache.get(path);
  if (!p) {
    p = readFile(path).catch((e: unknown) => {
      caCache.delete(path);
      throw new CheckFailure('file_unreadable', `probes.smtp.ca_file ${path}: ${(e as Error).message}`, 'setup');
    });
    caCache.set(path, p);
  }
  return p;
}

/** Why the CA file cannot be used, or undefined (read once at start: the plan is fixed). */
export function caFileProblem(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    const pem = readFileSync(path, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) return `probes.smtp.ca_file ${path}: holds no PEM certificate`;
    return undefined;
  } catch (e) {
    return `probes.smtp.ca_file ${path}: cannot be read: ${(e as Error).message}`;
  }
}

/** Why the SMTP AUTH password is missing, or undefined. */
export function smtpPassProblem(auth: SmtpSettings['auth'], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!auth || env[auth.passEnv]) return undefined;
  return `environment variable ${auth.passEnv} (probes.smtp.auth.pass_env) is not set: it must hold the SMTP AUTH password of ${auth.user}`;
}

export async function smtp(target: SmtpTarget, settings: SmtpSettings, ctx: CheckContext): Promise<SmtpResult> {
  const startedAt = ctx.now();
  const t0 = performance.now();
  let pass: string | undefined;
  if (settings.auth) {
    pass = process.env[settings.auth.passEnv];
    const problem = smtpPassProblem(settings.auth);
    if (problem) throw new CheckFailure('secret_missing', problem, 'setup');
  }
  const ca = await readCa(settings.caFile);
  const s = new TimedSession({
    ip: target.ip,
    port: target.port,
    servername: settings.mailHost,
    tls: settings.tls,
    helo: settings.helo,
    ca,
    connectTimeoutMs: settings.connectTimeoutMs,
    bannerTimeoutMs: settings.bannerTimeoutMs,
    commandTimeoutMs: settings.commandTimeoutMs,
    signal: ctx.signal,
  });
  let error: SessionError | undefined;
  let deciding: string | undefined;
  try {
    await s.open();
    if (s.tls && !s.tls.verified) {
      throw new SessionError('smtp_cert_invalid', 'starttls', `${s.tls.verifyError ?? 'unverified'} (presented ${s.tls.certNames.join(', ') || 'no names'})`);
    }
    if (settings.tls === 'required' && !s.tls) throw new SessionError('smtp_tls_unavailable', 'starttls', 'the session stayed unencrypted');
    if (settings.auth && pass !== undefined) await s.login(settings.auth.user, pass);
    if (settings.mode === 'rcpt') {
      deciding = await s.envelope(settings.from, settings.to);
      await s.reset();
    } else {
      const id = newMessageId();
      const text = composeMessage({
        from: settings.from,
        to: settings.to,
        id,
        subject: `mailprobe smtp check ${id}`,
        headers: [`X-Mailprobe-Check: smtp; probe=${ctx.probe.id}; ip=${target.ip}`],
        body: `Synthetic monitoring message from mailprobe probe ${ctx.probe.id} (${ctx.probe.region}) via ${target.ip}. Please ignore.`,
      });
      deciding = await s.send(settings.from, settings.to, text);
    }
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    error = e;
  }
  await s.quit();
  const durationSeconds = sec(performance.now() - t0);
  const tlsa =
    s.tls && s.tls.chain.length > 0 && settings.tlsaLookup ? await daneOf(settings.mailHost, settings.tlsaLookup, s.tls.chain, s.tls.verified, ctx) : undefined;

  const phases: SmtpResult['phases'] = {};
  for (const [p, ms] of Object.entries(s.phases)) phases[p as keyof SmtpResult['phases']] = sec(ms);
  const reply = error ? error.reply : deciding;
  const code = replyCode(reply);
  const enhanced = enhancedCode(reply);
  const bannerHost = replyHost(s.banner);
  const ehloHost = replyHost(s.ehlo);
  const result: SmtpResult = {
    type: 'smtp',
    startedAt,
    durationSeconds,
    ok: true,
    ip: target.ip,
    side: target.side,
    port: target.port,
    mode: settings.mode,
    phases,
    ...(code !== undefined ? { replyCode: code } : {}),
    ...(enhanced ? { enhancedCode: enhanced } : {}),
    ...(s.banner !== undefined ? { banner: text(s.banner) } : {}),
    ...(bannerHost ? { bannerHost } : {}),
    ...(ehloHost ? { ehloHost } : {}),
    ...(s.tls ? { tls: { version: s.tls.version.slice(0, 16), certNames: s.tls.certNames, certExpiry: s.tls.certExpiry, verified: s.tls.verified } } : {}),
    ...(tlsa ? { tlsa } : {}),
  };
  if (!error) return result;
  return { ...result, ...failure(error.phase, error.code, error.detail) };
}

/**
 * Whether the TLSA records at `_25._tcp.<mail host>` (where DANE senders look, RFC 7672, whatever
 * port the probe uses) match the certificate chain this IP presented; undefined when none are published or the lookup failed (the auth check reports the
 * records and their lookup failures; this only adds the match per IP).
 */
async function daneOf(mailHost: string, lookup: DnsSettings, chain: Buffer[], verified: boolean, ctx: CheckContext): Promise<SmtpResult['tlsa']> {
  const q = `_25._tcp.${bareName(mailHost)}`;
  try {
    const r = await lookupClient(lookup).query(q, 'TLSA', { signal: ctx.signal });
    if (r.rcode !== 0) return undefined;
    const recs = recordsOf(r, 'TLSA')
      .slice(0, 64)
      .map((a) => parseTlsa(a.value))
      .filter((x): x is TlsaRecord => x !== undefined);
    if (recs.length === 0) return undefined;
    const match = tlsaMatch(recs, chain, verified);
    const kinds = [...new Set(recs.map((t) => `${t.usage} ${t.selector} ${t.mtype}`))].join(', ');
    return { match, records: recs.length, detail: text(`${match ? 'matches' : 'no match among'} ${recs.length} TLSA record(s) at ${q} (${kinds})`) };
  } catch {
    return undefined;
  }
}

/** probes.smtp of the plan as settings (shared by the round trip for its sending side). */
export function smtpSettings(plan: PlanConfig): SmtpSettings {
  const p = plan.probes.smtp;
  return {
    mailHost: plan.cutover.mail_host,
    mode: p.mode,
    tls: p.tls,
    from: p.from,
    to: p.to ?? `postmaster@${plan.cutover.domain}`,
    helo: p.helo ?? defaultHelo(),
    auth: p.auth ? { user: p.auth.user, passEnv: p.auth.pass_env } : undefined,
    caFile: p.ca_file,
    connectTimeoutMs: p.connect_timeout,
    bannerTimeoutMs: p.banner_timeout,
    commandTimeoutMs: plan.probes.timeout,
    tlsaLookup: dnsSettings(plan),
  };
}

/** What keeps SMTP sessions (the smtp check's and the round trip's) from running at all. */
export function smtpSetupProblems(plan: PlanConfig, env: NodeJS.ProcessEnv): string[] {
  const s = smtpSettings(plan);
  return [smtpPassProblem(s.auth, env), caFileProblem(s.caFile)].filter((p): p is string => p !== undefined);
}

export const smtpCheck: CheckSpec<'smtp', SmtpSettings> = {
  type: 'smtp',
  run: smtp,
  targets(plan) {
    const settings = smtpSettings(plan);
    return plan.cutover.servers.map((s) => {
      const port = s.port ?? plan.probes.smtp.port;
      return { key: `${s.ip}:${port}`, target: { ip: s.ip, side: s.side, port, mode: settings.mode }, settings };
    });
  },
  setupProblems: smtpSetupProblems,
};
