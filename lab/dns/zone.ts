/**
 * The lab's DNS data: the test zone, the reverse zones of the server IPs and blocklist zones,
 * as a pure function of options and the timeline's current state. The end-to-end lab composes
 * this with MTAs on the server IPs, so everything (domain, mail host, IPs, selectors, keys,
 * timeline) comes from options.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { isIP } from 'node:net';
import { dnsblKey, reverseName } from '../../probe/dns/reverse.js';
import { bareName } from '../../protocol/dns-name.js';

export { dnsblKey, reverseName };

/** What the mail host's address records serve at one moment. */
export type Serving = 'old' | 'new' | 'both';

/** One step of the cutover timeline, `at` ms after the timeline starts. */
export interface TimelineStep {
  at: number;
  /** TTL of the mail host's A/AAAA records from this step on. */
  ttl?: number;
  /** Which server's address the mail host resolves to from this step on. */
  serve?: Serving;
  /** A note for logs and tests ("lower TTL", "switch", "raise TTL"). */
  label?: string;
}

export interface ZoneState {
  ttl: number;
  serve: Serving;
}

export interface DnsblZone {
  /** The list's zone, such as `bl.lab.test`. */
  zone: string;
  /** Listed IPs → the 127.0.0.x answers the list gives. */
  listed?: Record<string, string[]>;
  /** Answer 127.255.255.254 to everything, like Spamhaus to a public resolver. */
  refuse?: boolean;
}

export interface ZoneOptions {
  /** Default company.test. */
  domain?: string;
  /** Default mail.<domain>. */
  mailHost?: string;
  /** Default 127.0.0.2. */
  oldIp?: string;
  /** Default 127.0.0.3. */
  newIp?: string;
  /** IPv6 addresses of the servers, if the mail host has AAAA records. */
  oldIp6?: string;
  newIp6?: string;
  /** DKIM selectors published with the lab key. Default [s2026]. */
  selectors?: string[];
  /** The DKIM key pair (PEM); generated (RSA 2048) when absent. */
  dkimKey?: { privateKey: string; publicKey: string };
  /** Which IPs SPF lists: both during the overlap (default), or only one to simulate a broken record. */
  spf?: Serving | 'none';
  /** DMARC policy. Default quarantine; null publishes no record. */
  dmarc?: 'none' | 'quarantine' | 'reject' | null;
  /** PTR names per IP. Default: both server IPs → the mail host. */
  ptr?: Record<string, string[]>;
  /** Further host names in the zone and their addresses (A/AAAA), such as a server's own name. Default none. */
  hosts?: Record<string, string[]>;
  /** Publish `_mta-sts` with this policy id. Default: not published. */
  mtaStsId?: string;
  /**
   * TLSA at _25._tcp.<mail host>: true publishes a placeholder `3 1 1 <sha256>` (matches no
   * certificate), a list publishes these records (`usage selector type hex`, e.g. from
   * {@link tlsaRecordFor}). Default false.
   */
  tlsa?: boolean | string[];
  /** Blocklist zones served by the same authoritative server. */
  dnsbl?: DnsblZone[];
  /** Address of the zone's name server (its A record and glue). */
  nsIp?: string;
  /** TTL of everything but the mail host's addresses. Default 5 s. */
  ttl?: number;
  /** Negative-answer TTL (SOA minimum). Default 2 s. */
  negativeTtl?: number;
  /** Initial state before any timeline step. Default { ttl: 8, serve: 'old' }. */
  initial?: ZoneState;
  /** The timeline (lower TTL, switch, raise TTL). Default: none (stays at initial). */
  timeline?: TimelineStep[];
}

export type ResolvedZoneOptions = Required<Omit<ZoneOptions, 'oldIp6' | 'newIp6' | 'mtaStsId' | 'dmarc'>> &
  Pick<ZoneOptions, 'oldIp6' | 'newIp6' | 'mtaStsId'> & { dmarc: ZoneOptions['dmarc'] };

export function resolveZoneOptions(o: ZoneOptions): ResolvedZoneOptions {
  const domain = (o.domain ?? 'company.test').toLowerCase();
  const mailHost = (o.mailHost ?? `mail.${domain}`).toLowerCase();
  const oldIp = o.oldIp ?? '127.0.0.2';
  const newIp = o.newIp ?? '127.0.0.3';
  return {
    domain,
    mailHost,
    oldIp,
    newIp,
    oldIp6: o.oldIp6,
    newIp6: o.newIp6,
    selectors: o.selectors ?? ['s2026'],
    dkimKey: o.dkimKey ?? generateDkimKey(),
    spf: o.spf ?? 'both',
    dmarc: o.dmarc === undefined ? 'quarantine' : o.dmarc,
    ptr: o.ptr ?? { [oldIp]: [mailHost], [newIp]: [mailHost] },
    hosts: o.hosts ?? {},
    mtaStsId: o.mtaStsId,
    tlsa: o.tlsa ?? false,
    dnsbl: o.dnsbl ?? [],
    nsIp: o.nsIp ?? '127.0.0.1',
    ttl: o.ttl ?? 5,
    negativeTtl: o.negativeTtl ?? 2,
    initial: o.initial ?? { ttl: 8, serve: 'old' },
    timeline: [...(o.timeline ?? [])].sort((a, b) => a.at - b.at),
  };
}

let cachedKey: { privateKey: string; publicKey: string } | null = null;

/** An RSA 2048 key pair for DKIM (one per process: generating is slow-ish). */
export function generateDkimKey(): { privateKey: string; publicKey: string } {
  cachedKey ??= generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return cachedKey;
}

/** The base64 body of a PEM public key (what DKIM's p= carries). */
export function pemBody(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}

/** The state of the mail host's records `elapsedMs` after the timeline started. */
export function stateAt(o: ResolvedZoneOptions, elapsedMs: number): ZoneState {
  const s = { ...o.initial };
  for (const step of o.timeline) {
    if (step.at > elapsedMs) break;
    if (step.ttl !== undefined) s.ttl = step.ttl;
    if (step.serve !== undefined) s.serve = step.serve;
  }
  return s;
}

/** A record as the lab serves it (rdata in dns2's Resource shape). */
export interface LabRecord {
  name: string;
  type: number;
  ttl: number;
  rdata: Record<string, unknown>;
}

export interface LookupResult {
  rcode: number;
  answers: LabRecord[];
  authorities: LabRecord[];
}

const T = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 } as const;

/** The zone apex a reverse name belongs to: the /24 (IPv4) or /64 (IPv6). */
function reverseApex(ip: string): string {
  const name = reverseName(ip);
  const labels = name.split('.');
  return isIP(ip) === 4 ? labels.slice(1).join('.') : labels.slice(16).join('.');
}

/** All zones the lab's authoritative server is authoritative for. */
export function zonesOf(o: ResolvedZoneOptions): string[] {
  const ips = [...new Set([o.oldIp, o.newIp, o.oldIp6, o.newIp6, ...Object.keys(o.ptr)].filter((x): x is string => !!x))];
  return [...new Set([o.domain, ...ips.map(reverseApex), ...o.dnsbl.map((z) => z.zone.toLowerCase())])];
}

function txtStrings(text: string): string[] {
  // Character-strings are at most 255 octets; long records are split like real zone files do.
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 255) out.push(text.slice(i, i + 255));
  return out.length > 0 ? out : [''];
}

/** Every record of every zone for one state, keyed by lower-case name. */
export function buildRecords(o: ResolvedZoneOptions, state: ZoneState): Map<string, LabRecord[]> {
  const m = new Map<string, LabRecord[]>();
  const add = (name: string, type: number, ttl: number, rdata: Record<string, unknown>) => {
    const key = name.toLowerCase();
    const list = m.get(key) ?? [];
    list.push({ name: key, type, ttl, rdata });
    m.set(key, list);
  };
  const d = o.domain;
  const ns = `ns1.${d}`;
  for (const zone of zonesOf(o)) {
    add(zone, T.SOA, o.ttl, { primary: ns, admin: `hostmaster.${d}`, serial: 2026120401, refresh: 60, retry: 30, expiration: 600, minimum: o.negativeTtl });
    add(zone, T.NS, o.ttl, { ns });
  }
  add(ns, T.A, o.ttl, { address: o.nsIp });
  // The moving records.
  const v4 = state.serve === 'both' ? [o.oldIp, o.newIp] : [state.serve === 'old' ? o.oldIp : o.newIp];
  for (const ip of v4) add(o.mailHost, T.A, state.ttl, { address: ip });
  const v6 = (state.serve === 'both' ? [o.oldIp6, o.newIp6] : [state.serve === 'old' ? o.oldIp6 : o.newIp6]).filter((x): x is string => !!x);
  for (const ip of v6) add(o.mailHost, T.AAAA, state.ttl, { address: ip });
  add(d, T.MX, o.ttl, { exchange: o.mailHost, priority: 10 });
  // SPF: both IPs during the overlap.
  if (o.spf !== 'none') {
    const ips = o.spf === 'both' ? [o.oldIp, o.newIp, o.oldIp6, o.newIp6] : o.spf === 'old' ? [o.oldIp, o.oldIp6] : [o.newIp, o.newIp6];
    const mech = ips.filter((x): x is string => !!x).map((ip) => `${isIP(ip) === 6 ? 'ip6' : 'ip4'}:${ip}`);
    add(d, T.TXT, o.ttl, { data: [`v=spf1 ${mech.join(' ')} -all`] });
  }
  add(d, T.TXT, o.ttl, { data: ['mailprobe-lab=1'] });
  for (const sel of o.selectors) add(`${sel}._domainkey.${d}`, T.TXT, o.ttl, { data: txtStrings(`v=DKIM1; k=rsa; p=${pemBody(o.dkimKey.publicKey)}`) });
  if (o.dmarc) add(`_dmarc.${d}`, T.TXT, o.ttl, { data: [`v=DMARC1; p=${o.dmarc}; rua=mailto:dmarc@${d}`] });
  if (o.mtaStsId) {
    add(`_mta-sts.${d}`, T.TXT, o.ttl, { data: [`v=STSv1; id=${o.mtaStsId}`] });
    add(`mta-sts.${d}`, T.A, o.ttl, { address: o.nsIp });
  }
  if (Array.isArray(o.tlsa)) {
    for (const t of o.tlsa) {
      const m = /^(\d+) (\d+) (\d+) ([0-9a-f]+)$/i.exec(t.trim());
      if (!m) throw new Error(`lab zone tlsa: "${t}" is not "usage selector type hex"`);
      add(`_25._tcp.${o.mailHost}`, T.TLSA, o.ttl, {
        data: Buffer.concat([Buffer.from([Number(m[1]), Number(m[2]), Number(m[3])]), Buffer.from(m[4] ?? '', 'hex')]),
      });
    }
  } else if (o.tlsa) {
    const hash = createHash('sha256').update(pemBody(o.dkimKey.publicKey)).digest();
    add(`_25._tcp.${o.mailHost}`, T.TLSA, o.ttl, { data: Buffer.concat([Buffer.from([3, 1, 1]), hash]) });
  }
  for (const [ip, names] of Object.entries(o.ptr)) for (const n of names) add(reverseName(ip), T.PTR, o.ttl, { domain: n });
  for (const [name, ips] of Object.entries(o.hosts)) for (const ip of ips) add(name, isIP(ip) === 6 ? T.AAAA : T.A, o.ttl, { address: ip });
  return m;
}

function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** Answers one question from the records; null when the name is in none of the zones. */
export function lookup(o: ResolvedZoneOptions, records: Map<string, LabRecord[]>, qname: string, qtype: number): LookupResult | null {
  const name = bareName(qname);
  const zone = zonesOf(o)
    .filter((z) => inZone(name, z))
    .sort((a, b) => b.length - a.length)[0];
  if (zone === undefined) return null;
  const soa = (records.get(zone) ?? []).filter((r) => r.type === T.SOA).map((r) => ({ ...r, ttl: o.negativeTtl }));
  const bl = o.dnsbl.find((z) => z.zone.toLowerCase() === zone);
  if (bl && name !== zone) return dnsblLookup(bl, name, zone, qtype, o.ttl, soa);
  const here = records.get(name);
  if (!here) {
    // A name that exists only as a parent of other names is an empty non-terminal: NODATA.
    const ent = [...records.keys()].some((k) => k.endsWith(`.${name}`));
    return { rcode: ent ? 0 : 3, answers: [], authorities: soa };
  }
  const answers = here.filter((r) => r.type === qtype);
  if (answers.length === 0) {
    const cname = here.find((r) => r.type === T.CNAME);
    if (cname) return { rcode: 0, answers: [cname], authorities: [] };
  }
  return { rcode: 0, answers, authorities: answers.length === 0 ? soa : [] };
}

function dnsblLookup(bl: DnsblZone, name: string, zone: string, qtype: number, ttl: number, soa: LabRecord[]): LookupResult {
  const key = name.slice(0, -(zone.length + 1));
  let answers: string[] | undefined;
  if (bl.refuse) answers = ['127.255.255.254'];
  else {
    for (const [ip, a] of Object.entries(bl.listed ?? {})) if (dnsblKey(ip) === key) answers = a;
  }
  if (!answers) return { rcode: 3, answers: [], authorities: soa };
  if (qtype === T.TXT) return { rcode: 0, answers: [{ name, type: T.TXT, ttl, rdata: { data: [`listed in ${zone}`] } }], authorities: [] };
  if (qtype !== T.A) return { rcode: 0, answers: [], authorities: soa };
  return { rcode: 0, answers: answers.map((address) => ({ name, type: T.A, ttl, rdata: { address } })), authorities: [] };
}
