/**
 * What a receiver wrote into the test message it took: its own Authentication-Results verdicts
 * and the IP it saw deliver the message. Both come from mailauth's parsers (the RFC 8601 grammar
 * of Authentication-Results, and its Received parser), so the quirks of the big receivers —
 * Microsoft's header without an authserv-id, Yahoo's `dmarc=pass(p=REJECT)`, Gmail's comments —
 * are one maintained library's job. test/probe/checks/inbox-headers.test.ts runs them on
 * published headers of Gmail, Microsoft and Yahoo.
 *
 * Which header is the receiver's: the topmost Authentication-Results (the last one added, by the
 * receiver; any below it were added on the way). The delivering IP is the client address of the
 * receiver's Received header: the one naming the IP the receiver's SPF verdict was about
 * (Received-SPF `client-ip=`, or the spf comment of its Authentication-Results); without such a
 * statement, the hop above the oldest Received header (the sending server's own, which took the
 * message from the probe).
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { VERDICTS } from '../../protocol/checks/roundtrip.js';

const require = createRequire(import.meta.url);

interface ArEntry {
  value?: string;
  comment?: string;
}
type ArParsed = Record<string, ArEntry | ArEntry[] | string | undefined>;
const parseHeader = require('mailauth/lib/parse-dkim-headers.js') as (line: string) => { parsed: ArParsed };
const { parseReceived, getClientAddress } = require('mailauth/lib/parse-received.js') as {
  parseReceived(line: string): { from?: { value?: string; comment?: string } } | false;
  getClientAddress(from: unknown): string | false;
};

export type Verdict = (typeof VERDICTS)[number];
export interface ReceiverVerdicts {
  spf: Verdict;
  dkim: Verdict;
  dmarc: Verdict;
  arc: Verdict;
}

export interface HeaderLine {
  /** Lower-case name. */
  name: string;
  /** The whole header line, unfolded (`Name: value`). */
  line: string;
}

/** The header lines of a message, top first, unfolded. */
export function headerLines(raw: string | Buffer): HeaderLine[] {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  const out: HeaderLine[] = [];
  for (const l of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(l) && out.length > 0) {
      const last = out[out.length - 1] as HeaderLine;
      last.line += ` ${l.trim()}`;
      continue;
    }
    const colon = l.indexOf(':');
    if (colon > 0) out.push({ name: l.slice(0, colon).trim().toLowerCase(), line: l });
  }
  return out;
}

const KNOWN = new Set<string>(VERDICTS);
/** A receiver's word for a verdict in our vocabulary (Microsoft's bestguesspass: no DMARC record). */
function asVerdict(v: string | undefined): Verdict {
  const s = (v ?? '').trim().toLowerCase();
  if (KNOWN.has(s)) return s as Verdict;
  if (s === 'hardfail') return 'fail';
  if (s === 'bestguesspass' || s === '') return 'none';
  return 'neutral';
}

/** The verdicts of the topmost Authentication-Results; undefined without one. */
export function receiverVerdicts(headers: readonly HeaderLine[]): ReceiverVerdicts | undefined {
  const ar = headers.find((h) => h.name === 'authentication-results');
  if (!ar) return undefined;
  const p = parseHeader(ar.line).parsed;
  const one = (k: string): Verdict => {
    const e = p[k];
    return typeof e === 'object' && !Array.isArray(e) ? asVerdict(e.value) : 'none';
  };
  const dkims = Array.isArray(p.dkim) ? p.dkim : [];
  const dkim: Verdict = dkims.some((d) => asVerdict(d.value) === 'pass') ? 'pass' : dkims.length > 0 ? asVerdict(dkims[0]?.value) : 'none';
  return { spf: one('spf'), dkim, dmarc: one('dmarc'), arc: one('arc') };
}

const IP_IN_TEXT = /(?:client-ip=|designates |designate |sender IP is )\s*([0-9A-Fa-f:.]+[0-9A-Fa-f])/;

/** The IP the receiver's SPF verdict was about, as it states it. */
function spfClientIp(headers: readonly HeaderLine[]): string | undefined {
  const spf = headers.find((h) => h.name === 'received-spf');
  const ar = headers.find((h) => h.name === 'authentication-results');
  for (const h of [spf, ar]) {
    const m = h ? IP_IN_TEXT.exec(h.line) : null;
    if (m?.[1] && isIP(m[1])) return m[1];
  }
  return undefined;
}

/** The client address of a Received header: `[ip]` (mailauth), or Microsoft's bare `(ip)`. */
function receivedClient(line: string): string | undefined {
  const r = parseReceived(line);
  if (r === false || !r.from) return undefined;
  const literal = getClientAddress(r.from);
  if (literal) return literal;
  // Microsoft: `from host (192.0.2.1)`; Yahoo: `from 192.0.2.1 (EHLO host)`.
  for (const s of [r.from.comment, r.from.value]) {
    const bare = /^\s*([0-9A-Fa-f:.]+)\s*$/.exec(s ?? '')?.[1];
    if (bare && isIP(bare)) return bare;
  }
  return undefined;
}

/** The IP the receiver saw deliver the message (see the header comment); undefined if none can be told. */
export function deliveringIp(headers: readonly HeaderLine[]): string | undefined {
  const received = headers.filter((h) => h.name === 'received').map((h) => receivedClient(h.line));
  const stated = spfClientIp(headers);
  if (stated !== undefined && received.includes(stated)) return stated;
  // Oldest last: the hop above the sending server's own Received header.
  if (received.length >= 2) return received[received.length - 2];
  return received[0];
}
