/**
 * The lab's authoritative server (dns2, UDP + TCP on one port) for the test zone, its reverse
 * zones and blocklist zones. Records follow the timeline (lower TTL, switch, raise TTL) through
 * a clock that tests may compress or drive by hand; faults switch on and off on demand.
 */
import { Packet, responseFor, serveDns, type DnsRequestInfo, type LabDnsServer } from './server.js';
import { buildRecords, lookup, resolveZoneOptions, stateAt, type ResolvedZoneOptions, type ZoneOptions, type ZoneState } from './zone.js';
import { bareName } from '../../protocol/dns-name.js';

/** A fault the server shows until cleared. */
export type AuthFault =
  | { kind: 'servfail' | 'refused' | 'drop' | 'garbage' | 'bad-id' }
  /** UDP answers carry TC=1 and no records; TCP answers normally. */
  | { kind: 'truncate' }
  /** Answer after a delay. */
  | { kind: 'slow'; delayMs: number };

export interface AuthoritativeOptions extends ZoneOptions {
  host?: string;
  /** Wall clock, Unix ms. Default Date.now. */
  now?: () => number;
}

export interface QueryLogEntry {
  at: number;
  name: string;
  type: number;
  transport: 'udp' | 'tcp';
  rd: boolean;
  /** The EDNS UDP payload size the query advertised, or null without EDNS. */
  edns: number | null;
}

export interface Authoritative extends LabDnsServer {
  readonly zone: ResolvedZoneOptions;
  /** Current state of the moving records (timeline, then any manual override). */
  state(): ZoneState;
  /** Override the timeline from now on (manual driving in tests); null returns to the timeline. */
  set(state: Partial<ZoneState> | null): void;
  /** (Re)start the timeline at `at` (default now). */
  startTimeline(at?: number): void;
  /** When the timeline started, Unix ms. */
  readonly timelineStart: number;
  fault(f: AuthFault | null, opts?: { names?: string[] }): void;
  /** Changes the zone's static records from now on (fault drills: SPF, DKIM, DMARC, PTR, host names, blocklists). */
  updateZone(patch: ZonePatch): void;
  readonly queries: QueryLogEntry[];
}

/** The zone settings {@link Authoritative.updateZone} may change at run time. */
export type ZonePatch = Partial<Pick<ResolvedZoneOptions, 'spf' | 'dmarc' | 'selectors' | 'ptr' | 'hosts' | 'dnsbl' | 'tlsa'>>;

export async function startAuthoritative(opts: AuthoritativeOptions = {}): Promise<Authoritative> {
  const zone = resolveZoneOptions(opts);
  const now = opts.now ?? Date.now;
  let t0 = now();
  let override: Partial<ZoneState> | null = null;
  let fault: AuthFault | null = null;
  let faultNames: Set<string> | null = null;
  const queries: QueryLogEntry[] = [];

  const state = (): ZoneState => ({ ...stateAt(zone, now() - t0), ...(override ?? {}) });

  const handle = async (req: Packet, info: DnsRequestInfo): Promise<Packet | Buffer | null> => {
    const q = req.questions[0];
    if (!q) return null;
    const opt = req.additionals.find((r) => r.type === Packet.TYPE.EDNS);
    queries.push({ at: now(), name: q.name.toLowerCase(), type: q.type, transport: info.transport, rd: req.header.rd === 1, edns: opt ? opt.class : null });
    if (queries.length > 10_000) queries.splice(0, 5_000);
    const res = responseFor(req);
    res.header.aa = 1;
    const f = fault && (!faultNames || faultNames.has(bareName(q.name))) ? fault : null;
    if (f) {
      switch (f.kind) {
        case 'drop':
          return null;
        case 'garbage':
          return Buffer.from('this is not a DNS message at all');
        case 'servfail':
          res.header.rcode = 2;
          res.header.aa = 0;
          return res;
        case 'refused':
          res.header.rcode = 5;
          res.header.aa = 0;
          return res;
        case 'bad-id':
          res.header.id = (req.header.id + 1) & 0xffff;
          break;
        case 'truncate':
          if (info.transport === 'udp') {
            res.header.tc = 1;
            return res;
          }
          break;
        case 'slow':
          await new Promise((r) => setTimeout(r, f.delayMs));
          break;
      }
    }
    const result = lookup(zone, buildRecords(zone, state()), q.name, q.type);
    if (!result) {
      res.header.rcode = 5;
      res.header.aa = 0;
      return res;
    }
    res.header.rcode = result.rcode;
    const toRes = (r: { name: string; type: number; ttl: number; rdata: Record<string, unknown> }) =>
      new Packet.Resource({ name: r.name, type: r.type, class: Packet.CLASS.IN, ttl: r.ttl, ...r.rdata } as Partial<Packet['answers'][number]>);
    res.answers = result.answers.map(toRes);
    res.authorities = result.authorities.map(toRes);
    return res;
  };

  const server = await serveDns(handle, opts.host ?? '127.0.0.1');
  return {
    ...server,
    zone,
    state,
    set(s) {
      override = s;
    },
    startTimeline(at = now()) {
      t0 = at;
      override = null;
    },
    get timelineStart() {
      return t0;
    },
    fault(f, o = {}) {
      fault = f;
      faultNames = o.names ? new Set(o.names.map((n) => n.toLowerCase())) : null;
    },
    updateZone(patch) {
      if (patch.dmarc !== undefined) zone.dmarc = patch.dmarc;
      if (patch.spf !== undefined) zone.spf = patch.spf;
      if (patch.selectors !== undefined) zone.selectors = [...patch.selectors];
      if (patch.ptr !== undefined) zone.ptr = { ...patch.ptr };
      if (patch.hosts !== undefined) zone.hosts = { ...patch.hosts };
      if (patch.dnsbl !== undefined) zone.dnsbl = patch.dnsbl.map((z) => ({ ...z }));
      if (patch.tlsa !== undefined) zone.tlsa = Array.isArray(patch.tlsa) ? [...patch.tlsa] : patch.tlsa;
    },
    queries,
  };
}
