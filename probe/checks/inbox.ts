/**
 * inbox check: the evidence only real receivers can give. For each seed mailbox
 * (`probes.inbox.mailboxes`) and server IP it logs in over IMAP first (a mailbox it cannot read
 * costs no message), sends one HMAC-signed test message through that IP in `data` mode — the
 * round trip's message and SMTP client (`sendSigned`) — and searches the mailbox until the
 * message appears or `probes.inbox.deadline` passes. It reports where the message landed (the
 * configured inbox; spam: a folder flagged `\Junk` or named in `folders.spam`; another folder;
 * or lost), the arrival latency (the receiver's INTERNALDATE minus the send time, at most the
 * time the probe saw it), the receiver's own Authentication-Results verdicts and the IP it saw
 * deliver (probe/checks/inbox-headers.ts). It deletes the message it found — only a message
 * whose signature verifies, so it never touches other mail. A message it sent but could not
 * delete (IMAP failed after the send, or it arrived after the deadline) is remembered and looked
 * for again at the target's next attempt, after the login, and deleted once it verifies.
 *
 * Real receivers judge volume: a target sends at most once per `probes.inbox.every` (default
 * 1h); rounds in between return nothing. IMAP failures (connect, TLS, login refused, a folder
 * that does not exist, a server that stops answering) are failed results with the imap_* codes
 * of protocol/failures.ts.
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImapFlow, type ImapFlowOptions, type ListResponse } from 'imapflow';
import type { PlanConfig } from '../../config/schema.js';
import type { Failure } from '../../protocol/checks/common.js';
import type { InboxResult, InboxTarget, Placement } from '../../protocol/checks/inbox.js';
import { failure, type FailureCode } from '../../protocol/failures.js';
import type { CheckContext, CheckSpec } from '../check.js';
import { SIGNATURE_HEADER, newMessageId, secretFromEnv, secretProblem, verifyStamp } from '../smtp/signing.js';
import { deliveringIp, headerLines, receiverVerdicts } from './inbox-headers.js';
import { sendSigned } from './roundtrip.js';
import { readCa, type SmtpSettings, smtpSettings, smtpSetupProblems } from './smtp.js';

export type { InboxTarget };

export interface MailboxSettings {
  receiver: string;
  address: string;
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  user: string;
  passwordEnv?: string | undefined;
  tokenEnv?: string | undefined;
  caFile?: string | undefined;
  inboxFolder: string;
  spamFolders: readonly string[];
}

export interface InboxSettings {
  smtp: SmtpSettings;
  mailbox: MailboxSettings;
  from: string;
  secretEnv: string;
  deadlineMs: number;
  everyMs: number;
  pollMs: number;
  /** IMAP connect/greeting/command timeout. */
  imapTimeoutMs: number;
}

const sec = (ms: number): number => Math.round(ms * 1000) / 1e6;
const LAST_SENT = 'inbox:lastSent';
/** Messages sent and not deleted yet, looked for at the next attempt: `Pending[]`, oldest first. */
const PENDING = 'inbox:pending';
const PENDING_MAX = 16;
const PENDING_MAX_AGE_MS = 7 * 24 * 3600_000;

interface Pending {
  messageId: string;
  sentAt: number;
}

/** Special-use folders a delivered message is never looked for in (they mirror or hold other mail). */
const SKIP_USE = new Set(['\\All', '\\Flagged', '\\Sent', '\\Drafts', '\\Trash', '\\Important']);

class ImapFailure extends Error {
  constructor(
    readonly phase: string,
    readonly code: FailureCode,
    readonly detail: string,
  ) {
    super(detail);
  }
}

const TLS_CERT = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|UNABLE_TO_GET_ISSUER/;

/** An imapflow (or socket) error as a failure code of the vocabulary. */
export function imapFailureCode(e: unknown, aborted: boolean): FailureCode {
  const err = (e ?? {}) as { code?: string; authenticationFailed?: boolean; tlsFailed?: boolean; mailboxMissing?: boolean; serverResponseCode?: string };
  const code = err.code ?? '';
  if (aborted) return 'imap_timeout';
  if (err.authenticationFailed) return 'imap_login_refused';
  if (err.mailboxMissing || err.serverResponseCode === 'NONEXISTENT') return 'imap_mailbox_missing';
  if (TLS_CERT.test(code)) return 'imap_cert_invalid';
  if (err.tlsFailed || code.startsWith('ERR_SSL') || code === 'EPROTO' || code === 'ClosedAfterConnectTLS' || code === 'STARTTLS_INJECTION')
    return 'imap_tls_failed';
  if (code === 'CONNECT_TIMEOUT') return 'imap_connect_timeout';
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENOTFOUND' || code === 'NoConnection')
    return 'imap_connect_refused';
  if (code === 'GREETING_TIMEOUT' || code === 'ETIMEOUT' || code === 'UPGRADE_TIMEOUT' || code === 'ETIMEDOUT') return 'imap_timeout';
  return 'imap_protocol';
}

function imapDetail(e: unknown): string {
  const err = (e ?? {}) as { message?: string; responseText?: string; code?: string };
  return [err.code, err.responseText ?? err.message].filter(Boolean).join(' ');
}

/** The client for one mailbox (not yet connected). */
function imapClient(m: MailboxSettings, ca: Buffer | undefined, timeoutMs: number, env: NodeJS.ProcessEnv): ImapFlow {
  const auth = m.tokenEnv ? { user: m.user, accessToken: env[m.tokenEnv] ?? '' } : { user: m.user, pass: env[m.passwordEnv ?? ''] ?? '' };
  const opts: ImapFlowOptions = {
    host: m.host,
    port: m.port,
    secure: m.tls === 'implicit',
    doSTARTTLS: m.tls === 'starttls' ? true : m.tls === 'none' ? false : undefined,
    auth,
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: Math.max(timeoutMs, 30_000),
    tls: { ...(ca ? { ca } : {}), ...(isIP(m.host) ? {} : { servername: m.host }) },
  };
  return new ImapFlow(opts);
}

/** A folder's class: inbox, spam (\Junk or a configured name), or other. */
function classify(f: ListResponse, m: MailboxSettings): Exclude<Placement, 'lost'> {
  if (f.path.toUpperCase() === m.inboxFolder.toUpperCase()) return 'inbox';
  if (f.specialUse === '\\Junk' || m.spamFolders.some((s) => s.toUpperCase() === f.path.toUpperCase())) return 'spam';
  return 'other';
}

/** The folders to search, inbox first, then spam, then the rest (never Sent, Drafts, Trash, All…). */
async function searchOrder(client: ImapFlow, m: MailboxSettings): Promise<{ path: string; placement: Exclude<Placement, 'lost'> }[]> {
  const list = await client.list();
  const usable = list.filter((f) => !f.flags.has('\\Noselect') && !f.flags.has('\\NonExistent') && !SKIP_USE.has(f.specialUse ?? ''));
  const byPath = new Set(list.map((f) => f.path.toUpperCase()));
  for (const name of [m.inboxFolder, ...m.spamFolders]) {
    if (!byPath.has(name.toUpperCase())) throw new ImapFailure('imap:list', 'imap_mailbox_missing', `${name} at ${m.receiver}`);
  }
  const rank = { inbox: 0, spam: 1, other: 2 } as const;
  return usable.map((f) => ({ path: f.path, placement: classify(f, m) })).sort((a, b) => rank[a.placement] - rank[b.placement]);
}

interface Found {
  uid: number;
  path: string;
  placement: Exclude<Placement, 'lost'>;
  source: Buffer;
  internalDate?: Date | undefined;
}

/** One pass over the folders: our message, signature verified, or undefined. */
async function findOnce(
  client: ImapFlow,
  folders: { path: string; placement: Exclude<Placement, 'lost'> }[],
  messageId: string,
  check: (source: Buffer) => boolean,
): Promise<Found | undefined> {
  for (const f of folders) {
    const lock = await client.getMailboxLock(f.path);
    try {
      const uids = await client.search({ header: { 'message-id': messageId } }, { uid: true });
      for (const uid of uids || []) {
        const msg = await client.fetchOne(String(uid), { uid: true, source: true, internalDate: true }, { uid: true });
        if (msg === false || !msg.source || !check(msg.source)) continue;
        const d = msg.internalDate;
        return { uid, path: f.path, placement: f.placement, source: msg.source, internalDate: d instanceof Date ? d : d ? new Date(d) : undefined };
      }
    } finally {
      lock.release();
    }
  }
  return undefined;
}

async function deleteFound(client: ImapFlow, found: Found): Promise<void> {
  const lock = await client.getMailboxLock(found.path);
  try {
    await client.messageDelete(String(found.uid), { uid: true });
  } finally {
    lock.release();
  }
}

/** The body of a raw message (after the first empty line). */
function bodyOf(raw: Buffer): Buffer {
  const s = raw.toString('latin1');
  const m = /\r?\n\r?\n/.exec(s);
  return m ? raw.subarray(m.index + m[0].length) : Buffer.alloc(0);
}

export async function inbox(target: InboxTarget, settings: InboxSettings, ctx: CheckContext, env: NodeJS.ProcessEnv = process.env): Promise<InboxResult[]> {
  const now = ctx.now();
  const last = ctx.state.get(LAST_SENT) as number | undefined;
  if (last !== undefined && now - last < settings.everyMs) return [];
  // An attempt counts whether or not it gets to send: a refused login is not retried every round.
  ctx.state.set(LAST_SENT, now);
  const startedAt = now;
  const t0 = performance.now();
  const m = settings.mailbox;
  const secret = secretFromEnv(settings.secretEnv, env);
  const messageId = newMessageId();
  const done = (r: Partial<InboxResult> & ({ ok: true } | Failure)): InboxResult[] => [
    {
      type: 'inbox',
      startedAt,
      durationSeconds: sec(performance.now() - t0),
      receiver: m.receiver,
      viaIp: target.ip,
      side: target.side,
      messageId,
      ...r,
    } as InboxResult,
  ];

  const client = imapClient(m, await readCa(m.caFile), settings.imapTimeoutMs, env);
  // imapflow reports a dropped connection as an event as well as a rejected call.
  client.on('error', () => {});
  const onAbort = () => client.close();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const verifies = (source: Buffer): boolean => {
    const stamp = headerLines(source).find((h) => h.name === SIGNATURE_HEADER.toLowerCase());
    const value = stamp?.line.slice(stamp.line.indexOf(':') + 1).trim();
    return verifyStamp(secret, value, { from: settings.from, to: m.address, body: bodyOf(source) }).ok;
  };
  const pending = ((ctx.state.get(PENDING) as Pending[] | undefined) ?? []).filter((p) => now - p.sentAt < PENDING_MAX_AGE_MS);
  ctx.state.set(PENDING, pending);
  let sentId: string | undefined;
  let deleted = false;
  let phase = 'imap:connect';
  try {
    await client.connect();
    phase = 'imap:list';
    const folders = await searchOrder(client, m);
    // Our messages of earlier attempts that IMAP could not delete then.
    phase = 'imap:search';
    for (const p of [...pending]) {
      const left = await findOnce(client, folders, p.messageId, verifies);
      if (!left) continue;
      await deleteFound(client, left);
      pending.splice(pending.indexOf(p), 1);
      ctx.log.info({ messageId: p.messageId, receiver: m.receiver, folder: left.path }, 'inbox: deleted the test message an earlier attempt left');
    }

    phase = 'send';
    const sent = await sendSigned(
      { ip: target.ip, port: target.port },
      { smtp: settings.smtp, secret, from: settings.from, to: m.address, messageId, now: () => ctx.now() },
      {
        subject: `mailprobe inbox placement ${messageId}`,
        body: `Inbox-placement test message from mailprobe probe ${ctx.probe.id} (${ctx.probe.region}) via ${target.ip} to ${m.receiver}. Please ignore; it is deleted once found.`,
      },
      ctx,
    );
    if ('failure' in sent) {
      // A session that failed in or after DATA may have delivered the message all the same.
      if (sent.failure.phase === 'send:data' || sent.failure.phase === 'send:quit') sentId = messageId;
      return done({ ...sent.failure });
    }
    const { sentAt } = sent;
    sentId = messageId;

    phase = 'imap:search';
    let found: Found | undefined;
    for (;;) {
      // Listed again each pass: a receiver may create the folder it files the message into.
      found = await findOnce(client, await searchOrder(client, m), messageId, verifies);
      if (found || ctx.signal.aborted) break;
      const left = sentAt + settings.deadlineMs - ctx.now();
      if (left <= 0) break;
      // Aborted (the runtime's timeout): the loop ends on the next check of the signal.
      await sleep(Math.min(settings.pollMs, left), undefined, { signal: ctx.signal }).catch(() => undefined);
    }
    if (!found) {
      if (ctx.signal.aborted && ctx.now() < sentAt + settings.deadlineMs) return done(failure('imap:search', 'imap_timeout', 'aborted before the deadline'));
      return done({ placement: 'lost', ...failure('wait', 'inbox_lost', `${settings.deadlineMs} ms via ${target.ip} at ${m.receiver}`) });
    }
    const seenAt = ctx.now();
    const arrived = found.internalDate?.getTime();
    const latencyMs = Math.min(Math.max(0, (arrived ?? seenAt) - sentAt), Math.max(0, seenAt - sentAt));
    const headers = headerLines(found.source);
    const verdicts = receiverVerdicts(headers);
    const ip = deliveringIp(headers);
    phase = 'imap:delete';
    await deleteFound(client, found);
    deleted = true;
    return done({
      ok: true,
      placement: found.placement,
      folder: found.path.slice(0, 256),
      latencySeconds: sec(latencyMs),
      ...(ip ? { deliveringIp: ip.slice(0, 64) } : {}),
      verdicts: verdicts ?? { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none' },
    });
  } catch (e) {
    if (e instanceof ImapFailure) return done(failure(e.phase, e.code, e.detail));
    if (phase === 'send') throw e;
    return done(failure(phase, imapFailureCode(e, ctx.signal.aborted), `${m.host}:${m.port} (${m.receiver}): ${imapDetail(e)}`));
  } finally {
    // Sent and not deleted (IMAP failed after the send, or not there by the deadline): the next attempt looks for it.
    if (sentId !== undefined && !deleted) {
      pending.push({ messageId: sentId, sentAt: startedAt });
      if (pending.length > PENDING_MAX) pending.splice(0, pending.length - PENDING_MAX);
    }
    ctx.signal.removeEventListener('abort', onAbort);
    if (client.usable) await client.logout().catch(() => client.close());
    else client.close();
  }
}

/** probes.inbox as settings per mailbox; empty without an inbox section. */
export function inboxSettings(plan: PlanConfig): InboxSettings[] {
  const ib = plan.probes.inbox;
  if (!ib) return [];
  const smtp = smtpSettings(plan);
  return ib.mailboxes.map((mb) => ({
    smtp,
    mailbox: {
      receiver: mb.receiver,
      address: mb.address,
      host: mb.imap.host,
      port: mb.imap.port,
      tls: mb.imap.tls,
      user: mb.imap.user,
      passwordEnv: mb.imap.password_env,
      tokenEnv: mb.imap.token_env,
      caFile: mb.imap.ca_file,
      inboxFolder: mb.folders.inbox,
      spamFolders: mb.folders.spam,
    },
    from: ib.from ?? plan.probes.roundtrip?.from ?? plan.probes.smtp.from,
    secretEnv: ib.secret_env ?? plan.probes.roundtrip?.secret_env ?? 'MAILPROBE_RT_SECRET',
    deadlineMs: ib.deadline,
    everyMs: ib.every,
    pollMs: ib.poll,
    imapTimeoutMs: plan.probes.timeout,
  }));
}

/** Why a mailbox's credential is not usable, or undefined. */
function credentialProblem(m: MailboxSettings, i: number, env: NodeJS.ProcessEnv): string | undefined {
  const name = m.tokenEnv ?? m.passwordEnv ?? '';
  const field = m.tokenEnv ? 'token_env' : 'password_env';
  if (!env[name])
    return `environment variable ${name} (probes.inbox.mailboxes[${i}].imap.${field}) is not set: it must hold the IMAP ${m.tokenEnv ? 'OAuth2 access token' : 'password'} of ${m.user} at ${m.host}`;
  return undefined;
}

export const inboxCheck: CheckSpec<'inbox', InboxSettings> = {
  type: 'inbox',
  run: (target, settings, ctx) => inbox(target, settings, ctx),
  targets(plan) {
    return inboxSettings(plan).flatMap((settings) =>
      plan.cutover.servers.map((s) => {
        const port = s.port ?? plan.probes.smtp.port;
        return { key: `${settings.mailbox.receiver}:${s.ip}:${port}`, target: { receiver: settings.mailbox.receiver, ip: s.ip, side: s.side, port }, settings };
      }),
    );
  },
  setupProblems(plan, env) {
    const all = inboxSettings(plan);
    if (all.length === 0) return [];
    const secret = secretProblem(all[0]?.secretEnv ?? '', env)?.replace('probes.roundtrip.secret_env', 'probes.inbox.secret_env');
    return [secret, ...all.map((s, i) => credentialProblem(s.mailbox, i, env)), ...smtpSetupProblems(plan, env)].filter((p): p is string => p !== undefined);
  },
  timeoutMs: (plan) => (plan.probes.inbox?.deadline ?? 0) + 2 * plan.probes.timeout,
};
