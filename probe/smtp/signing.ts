/**
 * The round-trip signature (DESIGN §10): a header that carries probe id, message id and send
 * time with an HMAC-SHA256 over them, so nobody without the secret can forge delivery data and
 * the sink takes nothing else.
 *
 *   X-Mailprobe-Roundtrip: v=1; p=<probe id>; m=<message id>; t=<send time, Unix ms>; s=<base64url HMAC>
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Mailprobe-Roundtrip';

export interface RoundtripStamp {
  probeId: string;
  messageId: string;
  /** Send time, Unix ms (the sender's clock). */
  sentAt: number;
}

const TOKEN = /^[A-Za-z0-9._-]{1,128}$/;

function mac(secret: string | Buffer, s: RoundtripStamp): Buffer {
  return createHmac('sha256', secret).update(`v=1\n${s.probeId}\n${s.messageId}\n${s.sentAt}`).digest();
}

/** A fresh random message id (hex; also the local part of the Message-ID). */
export function newMessageId(): string {
  return randomBytes(12).toString('hex');
}

/** The header value for a stamp. Throws on ids that could not be carried in a header (a bug). */
export function signStamp(secret: string | Buffer, s: RoundtripStamp): string {
  if (!TOKEN.test(s.probeId) || !TOKEN.test(s.messageId) || !Number.isSafeInteger(s.sentAt)) throw new Error(`bad round-trip stamp ${JSON.stringify(s)}`);
  return `v=1; p=${s.probeId}; m=${s.messageId}; t=${s.sentAt}; s=${mac(secret, s).toString('base64url')}`;
}

export type VerifyOutcome = { ok: true; stamp: RoundtripStamp } | { ok: false; reason: 'unsigned' | 'bad_signature' };

/** Checks a header value (unfolded) against the secret. */
export function verifyStamp(secret: string | Buffer, value: string | undefined): VerifyOutcome {
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
  if (fields.get('v') !== '1' || !TOKEN.test(probeId) || !TOKEN.test(messageId) || !/^\d{1,16}$/.test(t) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) {
    return { ok: false, reason: 'bad_signature' };
  }
  const stamp = { probeId, messageId, sentAt: Number(t) };
  const given = Buffer.from(sig, 'base64url');
  const want = mac(secret, stamp);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'bad_signature' };
  return { ok: true, stamp };
}

/** The secret from the environment variable the plan names; a missing secret is bad config. */
export function secretFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const v = env[name];
  if (!v || v.length < 16) throw new Error(`round trip: environment variable ${name} must hold the HMAC secret (at least 16 characters)`);
  return v;
}
