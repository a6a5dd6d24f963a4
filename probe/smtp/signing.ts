/**
 * The round-trip signature: a header that carries probe id, message id and send time with an
 * HMAC-SHA256 over them and over the envelope sender, the recipient and a hash of the body, so
 * nobody without the secret can forge delivery data, a captured stamp cannot be moved into
 * another message or envelope, and the sink takes nothing else. (The sink refuses a message id
 * it has seen, so the whole message cannot be replayed either.)
 *
 *   X-Mailprobe-Roundtrip: v=2; p=<probe id>; m=<message id>; t=<send time, Unix ms>; s=<base64url HMAC>
 *   HMAC over: v=2 \n probe id \n message id \n send time \n sender \n recipient \n body hash
 * Addresses are compared lower-cased; the body hash is SHA-256 of the body with line ends made
 * CRLF, trailing white space cut from every line and trailing empty lines dropped (what a relay
 * may change without changing the message).
 */
import { CheckFailure } from '../errors.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { createHash, createHmac, randomBytes, timingSafeEqual } = process.getBuiltinModule('node:crypto');

export const SIGNATURE_HEADER = 'X-Mailprobe-Roundtrip';

export interface RoundtripStamp {
  probeId: string;
  messageId: string;
  /** Send time, Unix ms (the sender's clock). */
  sentAt: number;
}

/** What the stamp is bound to besides itself: the envelope and the body. */
export interface SignedEnvelope {
  from: string;
  to: string;
  /** The message body (after the header), as sent or as received. */
  body: string | Buffer;
}

const TOKEN = /^[A-Za-z0-9._-]{1,128}$/;

/** SHA-256 (base64url) of the canonical body. */
export function bodyHash(body: string | Buffer): string {
  const text = typeof body === 'string' ? body : body.toString('latin1');
  const lines = text.split(/\r?\n/).map((l) => l.replace(/[ \t]+$/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return createHash('sha256').update(lines.join('\r\n'), 'latin1').digest('base64url');
}

function mac(secret: string | Buffer, s: RoundtripStamp, e: SignedEnvelope): Buffer {
  return createHmac('sha256', secret)
    .update(`v=2\n${s.probeId}\n${s.messageId}\n${s.sentAt}\n${e.from.toLowerCase()}\n${e.to.toLowerCase()}\n${bodyHash(e.body)}`)
    .digest();
}

/** A fresh random message id (hex; also the local part of the Message-ID). */
export function newMessageId(): string {
  return randomBytes(12).toString('hex');
}

/** The header value for a stamp. Throws on ids that could not be carried in a header (a bug). */
export function signStamp(secret: string | Buffer, s: RoundtripStamp, e: SignedEnvelope): string {
  if (!TOKEN.test(s.probeId) || !TOKEN.test(s.messageId) || !Number.isSafeInteger(s.sentAt)) throw new Error(`bad round-trip stamp ${JSON.stringify(s)}`);
  return `v=2; p=${s.probeId}; m=${s.messageId}; t=${s.sentAt}; s=${mac(secret, s, e).toString('base64url')}`;
}

export type VerifyOutcome = { ok: true; stamp: RoundtripStamp } | { ok: false; reason: 'unsigned' | 'bad_signature' };

/** Checks a header value (unfolded) against the secret, the envelope and the body the sink received. */
export function verifyStamp(secret: string | Buffer, value: string | undefined, e: SignedEnvelope): VerifyOutcome {
  if (value === undefined) return { ok: false, reason: 'unsigned' };
  const fields = new Map<string, string>();
  for (const part of value.replace(/\s+/g, ' ').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const probeId = fields.get('p') ?? '';
  const messageId = fields.get('m') ?? '';
  const t = fields.get('t') ?? '';
  const sig = fields.get('s') ?? '';
  if (fields.get('v') !== '2' || !TOKEN.test(probeId) || !TOKEN.test(messageId) || !/^\d{1,16}$/.test(t) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) {
    return { ok: false, reason: 'bad_signature' };
  }
  const stamp = { probeId, messageId, sentAt: Number(t) };
  const given = Buffer.from(sig, 'base64url');
  const want = mac(secret, stamp, e);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'bad_signature' };
  return { ok: true, stamp };
}

/** The secret from the environment variable the plan names; a missing secret is bad config. */
export function secretFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const problem = secretProblem(name, env);
  if (problem) throw new CheckFailure('secret_missing', problem, 'setup');
  return env[name] as string;
}

/** Why the environment variable `name` does not hold a usable HMAC secret, or undefined. */
export function secretProblem(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[name];
  if (!v) return `environment variable ${name} (probes.roundtrip.secret_env) is not set: it must hold the round-trip HMAC secret (at least 16 characters)`;
  if (v.length < 16)
    return `environment variable ${name} (probes.roundtrip.secret_env) must hold the round-trip HMAC secret (at least 16 characters, it has ${v.length})`;
  return undefined;
}
