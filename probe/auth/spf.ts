/**
 * SPF (RFC 7208) evaluated over the probe's own DNS client, so the auth check needs no mail
 * authentication library (mailauth's SPF module loads joi and its tools; the probe only wants a
 * verdict). One parser reads the record grammar (section 12) and rejects the whole record on any
 * syntax error (section 4.6); check_host() then walks the mechanisms lazily with the limits of
 * section 4.6.4: at most 10 terms that query DNS (include, a, mx, ptr, exists, redirect; the first
 * TXT query does not count), at most 2 void answers (NXDOMAIN or no record of the type), at most
 * 10 address lookups per `mx` term and 10 names per PTR answer.
 *
 * Verdicts equal mailauth's `spf({ strict: true })` on the corpus of
 * test/probe/auth/spf-differential.test.ts, served by a real DNS server.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { expandV6 } from '../dns/classify.js';
import { recordsOf, type DnsClient, type DnsResponse, type QType } from '../dns/client.js';
import { reverseName } from '../dns/reverse.js';

export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

export interface SpfVerdict {
  result: SpfResult;
  /** The SPF record of the domain asked about, when exactly one was found. */
  record?: string;
  /** Why: the matching term, or the error. */
  reason: string;
  /** DNS-querying terms evaluated (the limit is 10). */
  lookups: number;
}

export interface SpfQuery {
  /** The client IP (IPv4-mapped IPv6 addresses count as IPv4). */
  ip: string;
  /** The domain of the envelope sender. */
  domain: string;
  /** The envelope sender (`%{s}`, `%{l}`, `%{o}`); default postmaster@domain. */
  sender?: string;
  /** The HELO name (`%{h}`). */
  helo?: string;
}

type Qualifier = '+' | '-' | '~' | '?';
const RESULT_OF: Record<Qualifier, SpfResult> = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' };

export type Mechanism =
  | { kind: 'all'; q: Qualifier }
  | { kind: 'include' | 'exists'; q: Qualifier; spec: string }
  | { kind: 'a' | 'mx'; q: Qualifier; spec?: string; cidr4: number; cidr6: number }
  | { kind: 'ptr'; q: Qualifier; spec?: string }
  | { kind: 'ip4' | 'ip6'; q: Qualifier; network: string; prefix: number };

export interface SpfRecord {
  mechanisms: Mechanism[];
  redirect?: string;
  exp?: string;
}

export const MAX_LOOKUPS = 10;
export const MAX_VOID = 2;
const MAX_MX_ADDRESS_LOOKUPS = 10;
const MAX_PTR_NAMES = 10;

/** The record is an SPF record: `v=spf1` then a space or the end (section 4.5). */
export function isSpfRecord(txt: string): boolean {
  return /^v=spf1( |$)/i.test(txt);
}

// --- grammar (section 12) ----------------------------------------------------------------------

const TOPLABEL = /^(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9])$/i;
const QNUM = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const IP4_NETWORK = new RegExp(`^${QNUM}(?:\\.${QNUM}){3}$`);
const MACRO_EXPAND = /^([a-z])(\d*)(r?)([.\-+,/_=]*)$/i;

class SyntaxProblem extends Error {}

/**
 * Checks a macro-string; `letters` are the macro letters allowed (c, r and t only outside
 * domain-specs). Returns whether it ends with a macro-expand (a domain-spec may end so).
 */
function checkMacroString(s: string, letters: string): boolean {
  let endsWithMacro = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    endsWithMacro = s[i] === '%';
    if (s[i] !== '%') {
      if (c < 0x21 || c > 0x7e) throw new SyntaxProblem(`invalid character in "${s}"`);
      continue;
    }
    const next = s[i + 1];
    if (next === '%' || next === '_' || next === '-') {
      i++;
      continue;
    }
    const end = s.indexOf('}', i);
    const m = next === '{' && end > 0 ? MACRO_EXPAND.exec(s.slice(i + 2, end)) : null;
    if (!m) throw new SyntaxProblem(`bad macro in "${s}"`);
    if (!letters.includes((m[1] ?? '').toLowerCase())) throw new SyntaxProblem(`macro letter ${m[1]} not allowed in "${s}"`);
    if (m[2] && Number(m[2]) === 0) throw new SyntaxProblem(`zero transformer in "${s}"`);
    i = end;
  }
  return endsWithMacro;
}

/** domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand. */
function checkDomainSpec(spec: string): void {
  if (spec === '') throw new SyntaxProblem('empty domain-spec');
  if (checkMacroString(spec, 'slodiphv')) return;
  const plain = spec.replace(/\.$/, '');
  const dot = plain.lastIndexOf('.');
  if (dot < 0 || !TOPLABEL.test(plain.slice(dot + 1))) throw new SyntaxProblem(`"${spec}" does not end in a top label`);
}

function cidrLength(s: string | undefined, max: number, dflt: number): number {
  if (s === undefined) return dflt;
  if (!/^(?:0|[1-9][0-9]*)$/.test(s) || Number(s) > max) throw new SyntaxProblem(`bad CIDR length /${s}`);
  return Number(s);
}

function parseTerm(term: string, rec: SpfRecord): void {
  const sep = term.search(/[:/]/);
  const eq = term.indexOf('=');
  if (eq >= 0 && (sep < 0 || eq < sep)) {
    const name = term.slice(0, eq);
    const value = term.slice(eq + 1);
    if (!/^[a-z][a-z0-9\-_.]*$/i.test(name)) throw new SyntaxProblem(`bad modifier name "${name}"`);
    const n = name.toLowerCase();
    if (n === 'redirect' || n === 'exp') {
      if (rec[n] !== undefined) throw new SyntaxProblem(`more than one ${n}=`);
      checkDomainSpec(value);
      rec[n] = value;
    } else checkMacroString(value, 'slodiphvcrt'); // unknown modifiers are ignored, but must parse
    return;
  }
  const m = /^([+\-~?]?)([a-z0-9]*)(.*)$/i.exec(term);
  const q = (m?.[1] || '+') as Qualifier;
  const kind = (m?.[2] ?? '').toLowerCase();
  const rest = m?.[3] ?? '';
  switch (kind) {
    case 'all':
      if (rest !== '') throw new SyntaxProblem(`"${term}": all takes no argument`);
      rec.mechanisms.push({ kind, q });
      return;
    case 'include':
    case 'exists':
      if (!rest.startsWith(':')) throw new SyntaxProblem(`"${term}": ${kind} needs a domain`);
      checkDomainSpec(rest.slice(1));
      rec.mechanisms.push({ kind, q, spec: rest.slice(1) });
      return;
    case 'a':
    case 'mx': {
      const p = /^(?::(.+?))?(?:\/([0-9]+))?(?:\/\/([0-9]+))?$/.exec(rest);
      if (!p) throw new SyntaxProblem(`"${term}": bad ${kind}`);
      if (p[1] !== undefined) checkDomainSpec(p[1]);
      rec.mechanisms.push({ kind, q, ...(p[1] !== undefined ? { spec: p[1] } : {}), cidr4: cidrLength(p[2], 32, 32), cidr6: cidrLength(p[3], 128, 128) });
      return;
    }
    case 'ptr':
      if (rest !== '' && !rest.startsWith(':')) throw new SyntaxProblem(`"${term}": bad ptr`);
      if (rest !== '') checkDomainSpec(rest.slice(1));
      rec.mechanisms.push({ kind, q, ...(rest !== '' ? { spec: rest.slice(1) } : {}) });
      return;
    case 'ip4':
    case 'ip6': {
      const p = /^:([^/]+)(?:\/([^/]*))?$/.exec(rest);
      const ok = p?.[1] !== undefined && (kind === 'ip4' ? IP4_NETWORK.test(p[1]) : isIP(p[1]) === 6);
      if (!p?.[1] || !ok) throw new SyntaxProblem(`"${term}": bad ${kind} network`);
      rec.mechanisms.push({ kind, q, network: p[1], prefix: cidrLength(p[2], kind === 'ip4' ? 32 : 128, kind === 'ip4' ? 32 : 128) });
      return;
    }
    default:
      throw new SyntaxProblem(`unknown mechanism "${term}"`);
  }
}

/** Parses an SPF record (`v=spf1 …`); a syntax error anywhere is an error of the whole record. */
export function parseSpf(txt: string): { record: SpfRecord } | { error: string } {
  if (!isSpfRecord(txt)) return { error: 'not an SPF record (v=spf1)' };
  if (/[^\x20-\x7e]/.test(txt)) return { error: 'the record has characters outside printable US-ASCII' };
  const rec: SpfRecord = { mechanisms: [] };
  try {
    for (const term of txt.slice(6).split(' ')) if (term !== '') parseTerm(term, rec);
  } catch (e) {
    if (e instanceof SyntaxProblem) return { error: e.message };
    throw e;
  }
  return { record: rec };
}

// --- addresses ---------------------------------------------------------------------------------

/** The address as bytes (4 or 16); IPv4-mapped IPv6 becomes IPv4. */
function addressBytes(ip: string): number[] | null {
  if (isIP(ip) === 4) return ip.split('.').map(Number);
  if (isIP(ip) !== 6) return null;
  const bytes = expandV6(ip.replace(/%.*$/, '')).flatMap((g) => [g >> 8, g & 0xff]);
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

function inNetwork(addr: readonly number[], network: string, prefix: number): boolean {
  const net = isIP(network) === 4 ? network.split('.').map(Number) : isIP(network) === 6 ? expandV6(network).flatMap((g) => [g >> 8, g & 0xff]) : null;
  if (!net || net.length !== addr.length) return false;
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if (((addr[bit >> 3] ?? 0) & mask) !== ((net[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

// --- evaluation --------------------------------------------------------------------------------

/** Ends the evaluation with a result (permerror, temperror). */
class Stop extends Error {
  constructor(
    readonly result: 'permerror' | 'temperror',
    readonly reason: string,
  ) {
    super(reason);
  }
}

type Answer = { kind: 'records'; values: string[] } | { kind: 'void' };

interface Evaluation {
  client: DnsClient;
  signal?: AbortSignal;
  addr: number[];
  v6: boolean;
  /** The client IP as the `%{i}` macro writes it. */
  ipText: string;
  sender: string;
  helo: string;
  lookups: number;
  voids: number;
  memo: Map<string, Promise<Answer>>;
}

/** One DNS question, asked once per evaluation; DNS failures are temperror (section 2.6.6). */
function ask(ev: Evaluation, name: string, type: QType): Promise<Answer> {
  const key = `${type} ${name.toLowerCase()}`;
  let p = ev.memo.get(key);
  if (!p) {
    p = ev.client.query(name, type, { signal: ev.signal }).then(
      (r: DnsResponse): Answer => {
        if (r.rcode === 3) return { kind: 'void' };
        if (r.rcode !== 0) throw new Stop('temperror', `${type} ${name}: ${r.rcodeName} from ${r.server}`);
        const recs = recordsOf(r, type);
        if (recs.length === 0) return { kind: 'void' };
        if (type === 'TXT') return { kind: 'records', values: recs.map((t) => (t.strings ?? [t.value]).join('')) };
        if (type === 'MX') return { kind: 'records', values: [...recs].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0)).map((m) => m.value) };
        return { kind: 'records', values: recs.map((x) => x.value) };
      },
      (e: unknown) => {
        throw new Stop('temperror', `${type} ${name}: ${(e as Error).message}`);
      },
    );
    ev.memo.set(key, p);
  }
  return p;
}

/** A query of a term: counts toward the lookup limit (unless `first`) and the void limit. */
async function counted(ev: Evaluation, name: string, type: QType, first = false): Promise<string[]> {
  if (!first && ++ev.lookups > MAX_LOOKUPS) throw new Stop('permerror', `more than ${MAX_LOOKUPS} DNS-querying terms`);
  const a = await ask(ev, name, type);
  if (a.kind === 'records') return a.values;
  if (++ev.voids > MAX_VOID) throw new Stop('permerror', `more than ${MAX_VOID} void lookups (the last ${type} ${name})`);
  return [];
}

/** A query that counts toward no limit (the addresses of MX and PTR names); void is []. */
async function uncounted(ev: Evaluation, name: string, type: QType): Promise<string[]> {
  const a = await ask(ev, name, type);
  return a.kind === 'records' ? a.values : [];
}

/** The names of the client IP that resolve back to it (section 5.5), up to 10 PTR names. */
async function validatedNames(ev: Evaluation): Promise<string[]> {
  let names: string[];
  try {
    names = (await counted(ev, reverseName(ev.ipText), 'PTR')).slice(0, MAX_PTR_NAMES);
  } catch (e) {
    if (e instanceof Stop && e.result === 'temperror') return []; // a DNS error: the ptr term does not match
    throw e;
  }
  const checked = await Promise.all(
    names.map(async (n) => {
      try {
        const addrs = await uncounted(ev, n.replace(/\.$/, ''), ev.v6 ? 'AAAA' : 'A');
        return addrs.some((a) => sameAddress(addressBytes(a), ev.addr)) ? n.replace(/\.$/, '') : null;
      } catch {
        return null;
      }
    }),
  );
  return checked.filter((n): n is string => n !== null);
}

const sameAddress = (a: number[] | null, b: readonly number[]) => a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
const isSubdomain = (name: string, of: string) => {
  const n = name.toLowerCase();
  const d = of.toLowerCase();
  return n === d || n.endsWith(`.${d}`);
};

function urlEscape(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
}

/** Expands the macros of a (syntax-checked) domain-spec for the domain being evaluated (section 7). */
async function expand(ev: Evaluation, spec: string, domain: string): Promise<string> {
  let ptrName: string | undefined;
  if (/%\{p/i.test(spec.replace(/%%/g, ''))) {
    const names = await validatedNames(ev);
    ptrName = names.find((n) => n.toLowerCase() === domain.toLowerCase()) ?? names.find((n) => isSubdomain(n, domain)) ?? names[0] ?? 'unknown';
  }
  const at = ev.sender.lastIndexOf('@');
  return spec.replace(/%%|%_|%-|%\{([^}]+)\}/g, (m, body: string | undefined) => {
    if (m === '%%') return '%';
    if (m === '%_') return ' ';
    if (m === '%-') return '%20';
    const [, letter = '', digits = '', reverse = '', delims = ''] = MACRO_EXPAND.exec(body ?? '') ?? [];
    const values: Record<string, string> = {
      s: ev.sender,
      l: ev.sender.slice(0, at),
      o: ev.sender.slice(at + 1),
      d: domain,
      i: ev.v6
        ? expandV6(ev.ipText)
            .flatMap((g) => g.toString(16).padStart(4, '0').split(''))
            .join('.')
        : ev.addr.join('.'),
      p: ptrName ?? 'unknown',
      v: ev.v6 ? 'ip6' : 'in-addr',
      h: ev.helo,
    };
    let parts = (values[letter.toLowerCase()] ?? '').split(new RegExp(`[${(delims || '.').replace(/[-\\\]^]/g, '\\$&')}]`));
    if (reverse) parts = parts.reverse();
    if (digits) parts = parts.slice(-Number(digits));
    const v = parts.join('.');
    return letter === letter.toUpperCase() ? urlEscape(v) : v;
  });
}

/** A name a term may query: at most 253 octets (longer ones lose labels on the left, section 7.3), ≥ 2 labels, a top label. */
function targetName(expanded: string): string | null {
  let name = expanded.replace(/\.$/, '');
  if ([...name].some((c) => c.charCodeAt(0) > 0x7f)) name = domainToASCII(name) || name;
  while (name.length > 253 && name.includes('.')) name = name.slice(name.indexOf('.') + 1);
  const labels = name.split('.');
  if (name.length > 253 || labels.length < 2) return null;
  if (labels.some((l) => l.length === 0 || l.length > 63 || !/^[\x20-\x2d\x2f-\x7e]+$/.test(l))) return null;
  return TOPLABEL.test(labels[labels.length - 1] ?? '') ? name : null;
}

type Outcome = { result: SpfResult; reason: string; record?: string };

/** check_host() of section 4 for one domain. */
async function checkHost(ev: Evaluation, domain: string, top: boolean): Promise<Outcome> {
  const records = (await counted(ev, domain, 'TXT', top)).filter(isSpfRecord);
  if (records.length === 0) return { result: 'none', reason: `no SPF record at ${domain}` };
  if (records.length > 1) return { result: 'permerror', reason: `${records.length} SPF records at ${domain}` };
  const text = records[0] ?? '';
  const parsed = parseSpf(text);
  if ('error' in parsed) return { result: 'permerror', reason: `${domain}: ${parsed.error}`, record: text };
  const rec = parsed.record;
  try {
    for (const m of rec.mechanisms) {
      if (await matches(ev, m, domain)) return { result: RESULT_OF[m.q], reason: `${domain}: matched ${m.kind}`, record: text };
    }
    if (rec.redirect !== undefined) {
      const target = targetName(await expand(ev, rec.redirect, domain));
      if (target === null) throw new Stop('permerror', `${domain}: redirect to an invalid name`);
      const sub = await checkHost(ev, target, false);
      if (sub.result === 'none') return { result: 'permerror', reason: `${domain}: redirect=${target} has no SPF record`, record: text };
      return { ...sub, record: text };
    }
    return { result: 'neutral', reason: `${domain}: no term matched`, record: text };
  } catch (e) {
    if (e instanceof Stop) return { result: e.result, reason: e.reason, record: text };
    throw e;
  }
}

async function matches(ev: Evaluation, m: Mechanism, domain: string): Promise<boolean> {
  switch (m.kind) {
    case 'all':
      return true;
    case 'ip4':
    case 'ip6':
      return (m.kind === 'ip6') === ev.v6 && inNetwork(ev.addr, m.network, m.prefix);
    case 'include': {
      const target = targetName(await expand(ev, m.spec, domain));
      if (target === null) throw new Stop('permerror', `${domain}: include of an invalid name`);
      const sub = await checkHost(ev, target, false);
      if (sub.result === 'pass') return true;
      if (sub.result === 'temperror' || sub.result === 'permerror') throw new Stop(sub.result, sub.reason);
      if (sub.result === 'none') throw new Stop('permerror', `${domain}: include:${target} has no SPF record`);
      return false;
    }
    case 'a':
    case 'mx': {
      const target = m.spec === undefined ? domain : targetName(await expand(ev, m.spec, domain));
      if (target === null) return false;
      const prefix = ev.v6 ? m.cidr6 : m.cidr4;
      const type = ev.v6 ? 'AAAA' : 'A';
      if (m.kind === 'a') return (await counted(ev, target, type)).some((a) => inNetwork(ev.addr, a, prefix));
      let asked = 0;
      for (const mx of await counted(ev, target, 'MX')) {
        const host = mx.replace(/\.$/, '');
        if (host === '') continue; // null MX
        if (++asked > MAX_MX_ADDRESS_LOOKUPS) throw new Stop('permerror', `${domain}: mx:${target} has more than ${MAX_MX_ADDRESS_LOOKUPS} hosts`);
        if ((await uncounted(ev, host, type)).some((a) => inNetwork(ev.addr, a, prefix))) return true;
      }
      return false;
    }
    case 'exists': {
      const target = targetName(await expand(ev, m.spec, domain));
      return target !== null && (await counted(ev, target, 'A')).length > 0;
    }
    case 'ptr': {
      const target = m.spec === undefined ? domain : targetName(await expand(ev, m.spec, domain));
      if (target === null) return false;
      return (await validatedNames(ev)).some((n) => isSubdomain(n, target));
    }
  }
}

/** The sender as the macros read it: without a local-part, `postmaster` is that local-part (section 4.3). */
function senderOf(sender: string): string {
  const at = sender.lastIndexOf('@');
  return at < 0 ? `postmaster@${sender}` : at === 0 ? `postmaster${sender}` : sender;
}

/** SPF's check_host() for `ip` and `domain`, with DNS from `client`. */
export async function checkSpf(q: SpfQuery, client: DnsClient, opts: { signal?: AbortSignal } = {}): Promise<SpfVerdict> {
  const addr = addressBytes(q.ip.trim());
  const domain = q.domain.trim().replace(/\.$/, '').toLowerCase();
  const base = { lookups: 0 };
  if (addr === null) return { ...base, result: 'temperror', reason: `not an IP address: ${q.ip}` };
  const ev: Evaluation = {
    client,
    ...(opts.signal ? { signal: opts.signal } : {}),
    addr,
    v6: addr.length === 16,
    ipText: addr.length === 4 ? addr.join('.') : q.ip.trim(),
    sender: senderOf(q.sender ?? `postmaster@${domain}`),
    helo: q.helo ?? domain,
    lookups: 0,
    voids: 0,
    memo: new Map(),
  };
  if (targetName(domain) === null) return { ...base, result: 'none', reason: `not a domain name: ${q.domain}` };
  let out: Outcome;
  try {
    out = await checkHost(ev, domain, true);
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    out = { result: e.result, reason: e.reason };
  }
  return {
    result: out.result,
    reason: out.reason,
    lookups: Math.min(ev.lookups, MAX_LOOKUPS + 1),
    ...(out.record !== undefined ? { record: out.record } : {}),
  };
}
