/**
 * roundtrip check: sends a signed test message via one destination IP to the
 * round-trip address and waits, up to `probes.roundtrip.deadline`, for the sink to receive what
 * the mail server relays. The sink runs in this probe process (probe/sink/shared.ts), so send
 * and arrival are on one clock (`sameClock: true`) and latency = arrival − send.
 *
 * With `probes.roundtrip.sink.url` the sink runs on another host (`mailprobe sink`) and the
 * check asks its arrivals API instead (probe/sink/http.ts); results then say `sameClock: false`,
 * and the probe loads neither smtp-server nor mailauth (the sink modules load on first use).
 *
 * The run holds its slot until the message arrives or the deadline passes, so the spec's
 * timeoutMs is the deadline plus the per-check timeout (for the sending part). A message that
 * has not arrived by then is lost (`delivered: false`, error class `lost`); one the server
 * refuses fails with the SMTP error class and is not waited for.
 */
import { performance } from 'node:perf_hooks';
import type { PlanConfig } from '../../config/schema.js';
import type { RoundtripResult, RoundtripTarget } from '../../protocol/checks/roundtrip.js';
import type { Failure } from '../../protocol/checks/common.js';
import { failure } from '../../protocol/failures.js';
import type { CheckContext, CheckSpec } from '../check.js';
import { remoteSink } from '../sink/http.js';
import type { SinkHandle } from '../sink/index.js';
import { composeMessage } from '../smtp/message.js';
import { SessionError, TimedSession } from '../smtp/session.js';
import { newMessageId, SIGNATURE_HEADER, secretFromEnv, secretProblem, signStamp } from '../smtp/signing.js';
import { readCa, type SmtpSettings, smtpSettings, smtpSetupProblems } from './smtp.js';

export type { RoundtripTarget, SinkHandle };

export interface RoundtripSettings {
  /** How to reach the destination (TLS mode, names, timeouts) — from probes.smtp. */
  smtp: SmtpSettings;
  /** The round-trip address. */
  to: string;
  /** Envelope sender and From. */
  from: string;
  /** Environment variable with the HMAC secret. */
  secretEnv: string;
  deadlineMs: number;
  sink: () => Promise<SinkHandle>;
}

const sec = (ms: number): number => Math.round(ms * 1000) / 1e6;

export async function roundtrip(target: RoundtripTarget, settings: RoundtripSettings, ctx: CheckContext): Promise<RoundtripResult> {
  const startedAt = ctx.now();
  const t0 = performance.now();
  const secret = secretFromEnv(settings.secretEnv);
  const sink = await settings.sink();
  const messageId = newMessageId();
  const base = { type: 'roundtrip' as const, startedAt, viaIp: target.ip, side: target.side, messageId, sameClock: sink.sameClock };
  const done = (r: Omit<RoundtripResult, 'type' | 'startedAt' | 'viaIp' | 'side' | 'messageId' | 'sameClock' | 'durationSeconds'>): RoundtripResult => ({
    ...base,
    durationSeconds: sec(performance.now() - t0),
    ...r,
  });

  const sent = await sendSigned(
    { ip: target.ip, port: target.port },
    { smtp: settings.smtp, secret, from: settings.from, to: settings.to, messageId, now: () => sink.now() },
    {
      subject: `mailprobe round trip ${messageId}`,
      body: `Round-trip test message from mailprobe probe ${ctx.probe.id} (${ctx.probe.region}) via ${target.ip}. Please ignore.`,
    },
    ctx,
  );
  if ('failure' in sent) return done({ delivered: false, ...sent.failure });
  const { sentAt } = sent;

  const arrival = await sink.waitFor(messageId, sentAt + settings.deadlineMs, ctx.signal);
  if (!arrival) {
    if (ctx.signal.aborted && sink.now() < sentAt + settings.deadlineMs) {
      return done({ delivered: false, ...failure('wait', 'smtp_aborted', 'before the deadline') });
    }
    return done({ delivered: false, ...failure('wait', 'rt_lost', `${settings.deadlineMs} ms via ${target.ip}`) });
  }
  return done({
    ok: true,
    delivered: true,
    latencySeconds: sec(Math.max(0, arrival.arrivedAt - arrival.sentAt)),
    deliveringIp: arrival.deliveringIp.slice(0, 64),
    ...(arrival.helo ? { helo: arrival.helo.slice(0, 256) } : {}),
    verdicts: arrival.verdicts,
  });
}

/** How one signed test message goes out: the destination's SMTP settings, the signing secret and the envelope. */
export interface SignedSendSettings {
  smtp: SmtpSettings;
  secret: string;
  from: string;
  to: string;
  messageId: string;
  /** The clock the send time is stamped with (Unix ms). */
  now(): number;
}

/**
 * Sends one HMAC-signed test message (`data` mode) through a server IP: the round trip's
 * message, also used by the inbox check. TLS as the smtp check does it, but a certificate that
 * does not verify does not stop it: judging it is the smtp check's job, delivering is this one's.
 * Returns the send time (stamped once the session is up, so latency covers MAIL … DATA, the
 * relay and the delivery), or the failure of the session.
 */
export async function sendSigned(
  dest: { ip: string; port: number },
  s: SignedSendSettings,
  msg: { subject: string; body: string },
  ctx: CheckContext,
): Promise<{ sentAt: number } | { failure: Failure }> {
  const session = new TimedSession({
    ip: dest.ip,
    port: dest.port,
    servername: s.smtp.mailHost,
    tls: s.smtp.tls,
    helo: s.smtp.helo,
    ca: await readCa(s.smtp.caFile),
    connectTimeoutMs: s.smtp.connectTimeoutMs,
    bannerTimeoutMs: s.smtp.bannerTimeoutMs,
    commandTimeoutMs: s.smtp.commandTimeoutMs,
    signal: ctx.signal,
  });
  try {
    await session.open();
    const sentAt = Math.floor(s.now());
    const stamp = signStamp(s.secret, { probeId: ctx.probe.id, messageId: s.messageId, sentAt }, { from: s.from, to: s.to, body: msg.body });
    const text = composeMessage({ from: s.from, to: s.to, id: s.messageId, subject: msg.subject, headers: [`${SIGNATURE_HEADER}: ${stamp}`], body: msg.body });
    await session.send(s.from, s.to, text);
    await session.quit();
    return { sentAt };
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    await session.quit();
    return { failure: failure(`send:${e.phase}`, e.code, e.detail) };
  }
}

/** probes.roundtrip as settings; undefined without a roundtrip section. */
export function roundtripSettings(plan: PlanConfig, sink?: () => Promise<SinkHandle>): RoundtripSettings | undefined {
  const rt = plan.probes.roundtrip;
  if (!rt) return undefined;
  return {
    smtp: smtpSettings(plan),
    to: rt.to,
    from: rt.from ?? plan.probes.smtp.from,
    secretEnv: rt.secret_env,
    deadlineMs: rt.deadline,
    sink:
      sink ??
      (async (): Promise<SinkHandle> => {
        if (rt.sink.url) return remoteSink(rt.sink.url, secretFromEnv(rt.secret_env));
        // The sink in this process (smtp-server, mailauth's DKIM/DMARC) loads only when used: a
        // remote sink, and the inbox check that sends through sendSigned, need none of it.
        const [{ sharedSink }, { preciseNow }] = await Promise.all([import('../sink/shared.js'), import('../sink/index.js')]);
        const s = await sharedSink(plan);
        return { waitFor: (id, until, signal) => s.waitFor(id, until, signal), now: preciseNow, sameClock: true };
      }),
  };
}

export const roundtripCheck: CheckSpec<'roundtrip', RoundtripSettings> = {
  type: 'roundtrip',
  run: roundtrip,
  targets(plan) {
    const settings = roundtripSettings(plan);
    if (!settings) return [];
    const sameClock = !plan.probes.roundtrip?.sink.url;
    return plan.cutover.servers.map((s) => {
      const port = s.port ?? plan.probes.smtp.port;
      return { key: `${s.ip}:${port}`, target: { ip: s.ip, side: s.side, port, sameClock }, settings };
    });
  },
  setupProblems(plan, env) {
    const rt = plan.probes.roundtrip;
    if (!rt) return [];
    return [secretProblem(rt.secret_env, env), ...smtpSetupProblems(plan, env)].filter((p): p is string => p !== undefined);
  },
  timeoutMs: (plan) => (plan.probes.roundtrip?.deadline ?? 0) + plan.probes.timeout,
};
