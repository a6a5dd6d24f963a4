/**
 * The status page's state: where the move stands, kept by the collector from the results it
 * accepts, so the page needs neither Prometheus nor Grafana. Bounded: every table is an LRU map
 * with a fixed number of entries, every sample window a fixed ring, and free text is cut, so a
 * fleet (or a hostile probe) can only displace older entries, never grow the process.
 *
 * `snapshot()` turns the state into {@link StatusV1}, the versioned document `GET /v1/status`
 * serves and the HTML page renders (docs/status.md describes every field).
 */
import { formatDuration, type PlanConfig } from '../../config/schema.js';
import type { AnswerSide, CheckResult, DnsResult, Side, SmtpResult } from '../../protocol/results.js';
import type { ProbeInfo } from '../../protocol/wire.js';

export const STATUS_VERSION = 1;

/** pass: ready; warn: works but worth a look; fail: blocks; unknown: no result yet. */
export type Verdict = 'pass' | 'warn' | 'fail' | 'unknown';

export interface CheckLine {
  check: 'ptr' | 'fcrdns' | 'spf' | 'dkim' | 'dmarc' | 'dnsbl' | 'certificate' | 'mta-sts' | 'tlsa' | 'delivery';
  title: string;
  verdict: Verdict;
  evidence: string;
  /** When the newest result behind it started (Unix ms), if any. */
  at: number | null;
}

export interface Condition {
  title: string;
  met: boolean;
  detail: string;
}

export interface Decision {
  safe: boolean;
  /** The conditions not met yet (empty when safe). */
  open: Condition[];
  conditions: Condition[];
}

/** A resolver's last answer, as the collector keeps it and the page shows it. */
export interface ResolverAnswer {
  resolver: string;
  /** The plan's name for it ("Google", "honest"), else the label. */
  name: string;
  side: AnswerSide;
  answers: string[];
  ttl: number | null;
  at: number;
  errorClass: string | null;
  message: string | null;
}

export interface ResolverRow extends ResolverAnswer {
  /** From the probes' ttl analysis: null when none ran for it yet. */
  honoursTtl: boolean | null;
  staleSeconds: number;
  extensionSeconds: number;
}

export interface RegionResolvers {
  region: string;
  onOld: string[];
  onNew: string[];
  onBoth: string[];
  failing: string[];
  /** Resolvers judged by the ttl analysis that honoured the TTL, over those judged (null: none judged). */
  ttlHonour: { honoured: number; judged: number; ratio: number | null };
  violators: { resolver: string; name: string; staleSeconds: number; extensionSeconds: number }[];
  resolvers: ResolverRow[];
}

/** The columns every per-(server, region) row starts with. */
export interface ServerRegionRow {
  ip: string;
  name: string;
  side: Side;
  region: string;
  p50Seconds: number | null;
  p95Seconds: number | null;
}

export interface DeliveryRow extends ServerRegionRow {
  sessions: number;
  successRatio: number | null;
  /** Over the last 10 sessions: what the readiness verdicts judge (a burst of failures long past does not hold them back). */
  recentSuccessRatio: number | null;
  lastErrorClass: string | null;
  lastError: string | null;
  lastErrorAt: number | null;
  lastAt: number;
}

export interface RoundtripRow extends ServerRegionRow {
  delivered: number;
  lost: number;
  failed: number;
  /** The receiver's verdicts on the newest delivered message. */
  verdicts: Record<string, string> | null;
  lastAt: number;
}

export interface ServerStatus {
  ip: string;
  name: string;
  side: Side;
  /** Worst verdict of its lines. */
  verdict: Verdict;
  checks: CheckLine[];
}

export interface ProbeRow {
  id: string;
  region: string;
  version: string;
  lastPush: number;
  secondsSincePush: number;
  spoolBytes: number | null;
  spoolBatches: number | null;
  spoolDropped: number | null;
}

export interface AuthoritativeRow {
  server: string;
  answers: string[];
  ttl: number | null;
  side: AnswerSide;
  at: number;
}

export type Phase = 'before-window' | 'ttl-lowered' | 'window-open' | 'switched' | 'propagated' | 'after-window';

/** An old-side IP a log follower (mailprobe mta-log) reports on: is anyone still delivering to it? */
export interface OldIpTraffic {
  ip: string;
  name: string;
  /** The last inbound session (Unix ms; when the follower started, if none since). */
  lastSessionAt: number;
  /** Seconds since that session. */
  quietSeconds: number;
  /** No session for probes.decommission_quiet: the condition of turning the old server off. */
  quiet: boolean;
  /** Client networks with sessions within probes.decommission_quiet, most sessions first (10 at most). */
  stillDelivering: { net: string; sessions: number; messages: number; lastAt: number }[];
}

export interface StatusV1 {
  version: 1;
  generatedAt: number;
  domain: string;
  mailHost: string;
  phase: Phase;
  phaseText: string;
  window: { start: number; end: number; state: 'before' | 'open' | 'after'; opensInSeconds: number | null; closesInSeconds: number | null };
  authoritative: { side: AnswerSide | null; ttl: number | null; highestTtlSeen: number | null; safeToSwitchAt: number | null; servers: AuthoritativeRow[] };
  resolvers: RegionResolvers[];
  delivery: DeliveryRow[];
  roundtrips: RoundtripRow[];
  servers: ServerStatus[];
  safeToSwitch: Decision;
  safeToTurnOldOff: Decision;
  /** Per old-side IP a log follower reports on, the facts of its condition in safeToTurnOldOff. */
  oldIpTraffic: OldIpTraffic[];
  probes: ProbeRow[];
}

export interface StatusLimits {
  /** Region × resolver rows kept. */
  resolvers: number;
  /** Probes kept. */
  probes: number;
  /** IP × region delivery and round-trip rows kept. */
  ipRegions: number;
  /** Sessions (and round trips) per row the ratios and percentiles are taken over. */
  window: number;
  /** Blocklist and other per-subject evidence rows kept. */
  subjects: number;
}

export const DEFAULT_LIMITS: StatusLimits = { resolvers: 20_000, probes: 5_000, ipRegions: 2_000, window: 100, subjects: 2_000 };

/** Free text kept per entry (messages are shown, not archived). */
const TEXT_KEEP = 300;
const cut = (s: string | undefined): string | null => (s === undefined ? null : s.length > TEXT_KEEP ? `${s.slice(0, TEXT_KEEP)}…` : s);

/** Client networks remembered per server IP for the status page. */
const MTA_NETS = 64;

interface NetState {
  net: string;
  sessions: number;
  messages: number;
  /** When a result last counted a session or message of it (Unix ms). */
  lastAt: number;
}

interface MtaState {
  ip: string;
  side: Side;
  /** The last inbound session (or when the follower started, if none since). */
  lastSessionAt: number;
  nets: Lru<string, NetState>;
}

/** An entry of {@link Lru}: its place in the order of writes. */
interface LruNode<K, V> {
  readonly key: K;
  value: V;
  /** Written before this one (undefined: the least recently written). */
  older: LruNode<K, V> | undefined;
  newer: LruNode<K, V> | undefined;
}

/**
 * A Map that forgets its least recently written entry beyond `max`. The order of writes is a list
 * through the entries, so writing a key already held changes two links and allocates nothing. (It
 * was the Map's own order, by deleting and re-adding the key on every write: V8 then rebuilt the
 * Map's table every few writes, each copy was promoted to the old generation with the values it
 * held, and at ~30 writes per push this was most of what pushes left there for the next full
 * collection: ~3.5 KiB per push of bench:scrape's content.)
 */
export class Lru<K, V> {
  readonly #m = new Map<K, LruNode<K, V>>();
  #oldest: LruNode<K, V> | undefined;
  #newest: LruNode<K, V> | undefined;
  constructor(readonly max: number) {}
  get(k: K): V | undefined {
    return this.#m.get(k)?.value;
  }
  set(k: K, v: V): void {
    let n = this.#m.get(k);
    if (n) {
      n.value = v;
      if (n === this.#newest) return;
      this.#unlink(n);
    } else {
      n = { key: k, value: v, older: undefined, newer: undefined };
      this.#m.set(k, n);
    }
    n.older = this.#newest;
    n.newer = undefined;
    if (this.#newest) this.#newest.newer = n;
    else this.#oldest = n;
    this.#newest = n;
    if (this.#m.size > this.max && this.#oldest) {
      const gone = this.#oldest;
      this.#unlink(gone);
      this.#m.delete(gone.key);
    }
  }
  #unlink(n: LruNode<K, V>): void {
    if (n.older) n.older.newer = n.newer;
    else this.#oldest = n.newer;
    if (n.newer) n.newer.older = n.older;
    else this.#newest = n.older;
    n.older = undefined;
    n.newer = undefined;
  }
  /** Least recently written first. */
  *values(): IterableIterator<V> {
    for (let n = this.#oldest; n; n = n.newer) yield n.value;
  }
  get size(): number {
    return this.#m.size;
  }
}

/** The last `size` samples. */
class Ring {
  readonly #v: number[] = [];
  #next = 0;
  constructor(readonly size: number) {}
  push(x: number): void {
    if (this.#v.length < this.size) this.#v.push(x);
    else this.#v[this.#next] = x;
    this.#next = (this.#next + 1) % this.size;
  }
  values(): readonly number[] {
    return this.#v;
  }
  /** The newest `n` samples. */
  last(n: number): number[] {
    const v = this.#v;
    if (v.length < this.size) return v.slice(-n);
    const out: number[] = [];
    for (let i = 1; i <= Math.min(n, v.length); i++) out.push(v[(this.#next - i + v.length) % v.length] ?? 0);
    return out;
  }
}

/** Sessions the readiness verdicts judge delivery by. */
const RECENT = 10;
const ratio = (xs: readonly number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/** The q-quantile (0..1) by nearest rank of the samples, or null. */
export function quantile(samples: readonly number[], q: number): number | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? null;
}

interface ResolverState extends ResolverAnswer {
  region: string;
  ttlVerdict: { violation: boolean; staleSeconds: number; extensionSeconds: number } | null;
}

interface DeliveryState {
  ip: string;
  side: Side;
  region: string;
  /** 1 ok, 0 failed, newest last. */
  outcomes: Ring;
  latencies: Ring;
  sessions: number;
  lastErrorClass: string | null;
  lastError: string | null;
  lastErrorAt: number | null;
  lastAt: number;
}

interface RoundtripState {
  ip: string;
  side: Side;
  region: string;
  outcomes: Ring;
  latencies: Ring;
  verdicts: Record<string, string> | null;
  lastAt: number;
}

interface Evidence {
  ok: boolean;
  pass: boolean;
  detail: string;
  at: number;
}

interface TlsState {
  verified: boolean;
  names: string[];
  expiry: number | null;
  error: string | null;
  at: number;
}

const VERDICT_RANK: Record<Verdict, number> = { fail: 3, unknown: 2, warn: 1, pass: 0 };
const worst = (vs: readonly Verdict[]): Verdict => vs.reduce<Verdict>((w, v) => (VERDICT_RANK[v] > VERDICT_RANK[w] ? v : w), 'pass');

/** Lines that must pass (or warn) before the switch; MTA-STS and TLSA are optional. */
const REQUIRED: ReadonlySet<CheckLine['check']> = new Set(['ptr', 'spf', 'dkim', 'dmarc', 'dnsbl', 'certificate', 'delivery']);

/** Certificates expiring sooner than this are flagged. */
const CERT_WARN_DAYS = 14;

export class StatusModel {
  readonly #plan: PlanConfig;
  readonly #limits: StatusLimits;
  readonly #now: () => number;
  readonly #names = new Map<string, { name: string; side: Side }>();
  readonly #resolvers: Lru<string, ResolverState>;
  readonly #auth: Lru<string, AuthoritativeRow>;
  readonly #delivery: Lru<string, DeliveryState>;
  readonly #roundtrips: Lru<string, RoundtripState>;
  readonly #probes: Lru<string, Omit<ProbeRow, 'secondsSincePush'>>;
  /** `rdns|ip`, `spf|ip`, `dnsbl|ip|list`, `dkim|selector`, `dmarc|domain`, `mta-sts|domain`, `tlsa|name` → the newest result. */
  readonly #evidence: Lru<string, Evidence & { ptr?: string[]; fcrdns?: boolean; matches?: boolean; listed?: boolean }>;
  readonly #tls: Lru<string, TlsState>;
  /** Per IP: whether the published TLSA records matched the certificate it presented (the newest SMTP session that saw records). */
  readonly #dane: Lru<string, { match: boolean; detail: string; at: number }>;
  /** Per region: safe to switch at (ms) and safe to decommission, from the ttl analysis. */
  readonly #ttlFigures: Lru<string, { safeToSwitchAt: number | null; safeToDecommission: boolean | null; at: number }>;
  /** Per server IP a log follower (mailprobe mta-log) reports on: its last inbound session and the networks delivering. */
  readonly #mta: Lru<string, MtaState>;
  #highestAuthTtl: number | null = null;
  /** Bumped on every accepted batch: renderers cache on it. */
  version = 0;

  constructor(plan: PlanConfig, opts: { limits?: Partial<StatusLimits>; now?: () => number } = {}) {
    this.#plan = plan;
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#now = opts.now ?? Date.now;
    for (const s of plan.cutover.servers) this.#names.set(s.ip, { name: s.name ?? s.ip, side: s.side });
    const l = this.#limits;
    this.#resolvers = new Lru(l.resolvers);
    this.#auth = new Lru(256);
    this.#delivery = new Lru(l.ipRegions);
    this.#roundtrips = new Lru(l.ipRegions);
    this.#probes = new Lru(l.probes);
    this.#evidence = new Lru(l.subjects);
    this.#tls = new Lru(256);
    this.#dane = new Lru(256);
    this.#ttlFigures = new Lru(1024);
    this.#mta = new Lru(256);
  }

  /** Takes the results of one accepted batch. */
  accept(probe: ProbeInfo, results: readonly CheckResult[]): void {
    const now = this.#now();
    const spool = probe.spool;
    this.#probes.set(probe.id, {
      id: probe.id,
      region: probe.region,
      version: probe.version,
      lastPush: now,
      spoolBytes: spool?.bytes ?? null,
      spoolBatches: spool?.batches ?? null,
      spoolDropped: spool?.dropped ?? null,
    });
    for (const r of results) this.#take(probe.region, r);
    this.version++;
  }

  #take(region: string, r: CheckResult): void {
    const at = r.startedAt;
    switch (r.type) {
      case 'dns':
        if (r.name !== this.#plan.cutover.mail_host || (r.qtype !== 'A' && r.qtype !== 'AAAA')) return;
        if (r.authoritative) this.#takeAuth(r);
        else this.#takeResolver(region, r);
        return;
      case 'ttl': {
        const key = `${region}\u0000${r.resolver}`;
        const s = this.#resolvers.get(key);
        if (s && r.ok) s.ttlVerdict = { violation: r.violation, staleSeconds: r.staleSeconds, extensionSeconds: r.extensionSeconds };
        if (r.safeToSwitchAt !== undefined || r.safeToDecommission !== undefined) {
          const prev = this.#ttlFigures.get(region);
          this.#ttlFigures.set(region, {
            safeToSwitchAt: r.safeToSwitchAt === undefined ? (prev?.safeToSwitchAt ?? null) : r.safeToSwitchAt,
            safeToDecommission: r.safeToDecommission ?? prev?.safeToDecommission ?? null,
            at,
          });
        }
        return;
      }
      case 'rdns':
        this.#evidence.set(`rdns|${r.ip}`, {
          ok: r.ok,
          pass: r.ok && r.fcrdns,
          detail: r.ok ? '' : (cut(r.message) ?? r.errorClass ?? ''),
          at,
          ptr: r.ptrNames.slice(0, 4),
          fcrdns: r.fcrdns,
          matches: r.matchesMailHost,
        });
        return;
      case 'auth':
        // TLSA is checked for the mail host only (whatever the subject is spelled as).
        this.#evidence.set(r.method === 'tlsa' ? 'tlsa|' : `${r.method}|${r.subject}`, {
          ok: r.ok,
          pass: r.ok && r.pass,
          detail: cut(r.ok ? r.detail : (r.message ?? r.detail)) ?? '',
          at,
        });
        return;
      case 'dnsbl':
        // A refused or failed query says nothing about listing: the last answer stands.
        if (r.ok) this.#evidence.set(`dnsbl|${r.ip}|${r.list}`, { ok: true, pass: !r.listed, detail: r.answers.slice(0, 4).join(' '), at, listed: r.listed });
        else if (!this.#evidence.get(`dnsbl|${r.ip}|${r.list}`))
          this.#evidence.set(`dnsbl|${r.ip}|${r.list}`, { ok: false, pass: false, detail: cut(r.message) ?? r.errorClass ?? '', at });
        return;
      case 'smtp':
        this.#takeSmtp(region, r);
        return;
      case 'mta':
        for (const x of r.ips) {
          const s = this.#mta.get(x.ip) ?? { ip: x.ip, side: x.side, lastSessionAt: 0, nets: new Lru<string, NetState>(MTA_NETS) };
          s.lastSessionAt = Math.max(s.lastSessionAt, x.lastSessionAt);
          for (const [list, field] of [
            [x.sessions, 'sessions'],
            [x.messages, 'messages'],
          ] as const) {
            for (const { net, count } of list) {
              if (count <= 0) continue;
              const n = s.nets.get(net) ?? { net, sessions: 0, messages: 0, lastAt: 0 };
              n[field] += count;
              n.lastAt = Math.max(n.lastAt, at);
              s.nets.set(net, n);
            }
          }
          this.#mta.set(x.ip, s);
        }
        return;
      case 'roundtrip': {
        const key = `${r.viaIp}\u0000${region}`;
        const s = this.#roundtrips.get(key) ?? {
          ip: r.viaIp,
          side: r.side,
          region,
          outcomes: new Ring(this.#limits.window),
          latencies: new Ring(this.#limits.window),
          verdicts: null,
          lastAt: 0,
        };
        // 2 delivered, 1 lost, 0 failed
        s.outcomes.push(r.delivered ? 2 : r.errorClass === 'lost' ? 1 : 0);
        if (r.delivered && r.latencySeconds !== undefined) s.latencies.push(r.latencySeconds);
        if (r.verdicts) s.verdicts = { ...r.verdicts };
        s.lastAt = Math.max(s.lastAt, at);
        this.#roundtrips.set(key, s);
        return;
      }
    }
  }

  #takeAuth(r: DnsResult): void {
    const server = r.resolver.replace(/^auth:/, '');
    const prev = this.#auth.get(server);
    if (prev && prev.at > r.startedAt) return;
    this.#auth.set(server, { server, answers: r.answers.slice(0, 8), ttl: r.ok ? r.ttl : null, side: r.ok ? r.side : 'error', at: r.startedAt });
    if (r.ok && r.ttl !== null) this.#highestAuthTtl = Math.max(this.#highestAuthTtl ?? 0, r.ttl);
  }

  #takeResolver(region: string, r: DnsResult): void {
    const key = `${region}\u0000${r.resolver}`;
    const prev = this.#resolvers.get(key);
    if (prev && prev.at > r.startedAt) return;
    this.#resolvers.set(key, {
      region,
      resolver: r.resolver,
      name: r.resolverName ?? r.resolver,
      side: r.ok ? r.side : 'error',
      answers: r.answers.slice(0, 8),
      ttl: r.ttl,
      at: r.startedAt,
      errorClass: r.ok ? null : (r.errorClass ?? 'internal'),
      message: r.ok ? null : cut(r.message),
      ttlVerdict: prev?.ttlVerdict ?? null,
    });
  }

  #takeSmtp(region: string, r: SmtpResult): void {
    const key = `${r.ip}\u0000${region}`;
    const s = this.#delivery.get(key) ?? {
      ip: r.ip,
      side: r.side,
      region,
      outcomes: new Ring(this.#limits.window),
      latencies: new Ring(this.#limits.window),
      sessions: 0,
      lastErrorClass: null,
      lastError: null,
      lastErrorAt: null,
      lastAt: 0,
    };
    s.outcomes.push(r.ok ? 1 : 0);
    s.sessions++;
    if (r.ok) s.latencies.push(r.durationSeconds);
    else {
      s.lastErrorClass = r.errorClass ?? 'internal';
      s.lastError = cut(r.message);
      s.lastErrorAt = r.startedAt;
    }
    s.lastAt = Math.max(s.lastAt, r.startedAt);
    this.#delivery.set(key, s);
    if (r.tls)
      this.#tls.set(r.ip, { verified: r.tls.verified, names: r.tls.certNames.slice(0, 8), expiry: r.tls.certExpiry * 1000, error: null, at: r.startedAt });
    else if (r.errorClass === 'cert_invalid' || r.errorClass === 'tls_error')
      this.#tls.set(r.ip, { verified: false, names: [], expiry: null, error: cut(r.message) ?? r.errorClass, at: r.startedAt });
    if (r.tlsa) this.#dane.set(r.ip, { match: r.tlsa.match, detail: cut(r.tlsa.detail) ?? '', at: r.startedAt });
  }

  #server(ip: string, side: Side): { name: string; side: Side } {
    return this.#names.get(ip) ?? { name: ip, side };
  }

  snapshot(): StatusV1 {
    const now = this.#now();
    const plan = this.#plan.cutover;
    const start = Date.parse(plan.window.start);
    const end = Date.parse(plan.window.end);
    const windowState = now < start ? 'before' : now < end ? 'open' : 'after';

    const servers = [...this.#auth.values()].sort((a, b) => cmp(a.server, b.server));
    const authSides = new Set(servers.filter((s) => s.side !== 'error' && s.side !== 'none').map((s) => s.side));
    const [onlySide] = authSides;
    const authSide: AnswerSide | null = onlySide === undefined ? null : authSides.size === 1 ? onlySide : 'both';
    const authTtl = servers.reduce<number | null>((m, s) => (s.ttl === null ? m : m === null ? s.ttl : Math.min(m, s.ttl)), null);
    const figures = [...this.#ttlFigures.values()];
    const switchAts = figures.map((f) => f.safeToSwitchAt).filter((x): x is number => x !== null);
    const safeToSwitchAt = switchAts.length > 0 ? Math.max(...switchAts) : null;
    const lowered = safeToSwitchAt !== null || (authTtl !== null && this.#highestAuthTtl !== null && authTtl < this.#highestAuthTtl);

    const resolvers = this.#regionResolvers();
    const anyOld = resolvers.some((r) => r.onOld.length > 0 || r.onBoth.length > 0);
    const switched = authSide === 'new' || authSide === 'both';

    const phase: Phase =
      windowState === 'after'
        ? 'after-window'
        : switched
          ? anyOld
            ? 'switched'
            : 'propagated'
          : windowState === 'open'
            ? 'window-open'
            : lowered
              ? 'ttl-lowered'
              : 'before-window';
    const delivery = this.#deliveryRows();
    const roundtrips = this.#roundtripRows();
    const serverStatus = this.#serverStatus(now, delivery);
    const probes = [...this.#probes.values()]
      .map((p) => ({ ...p, secondsSincePush: Math.max(0, Math.round((now - p.lastPush) / 1000)) }))
      .sort((a, b) => cmp(a.region, b.region) || cmp(a.id, b.id));
    const oldIpTraffic = this.#oldIpTraffic(now);

    return {
      version: STATUS_VERSION,
      generatedAt: now,
      domain: plan.domain,
      mailHost: plan.mail_host,
      phase,
      phaseText: phaseText(phase, resolvers),
      window: {
        start,
        end,
        state: windowState,
        opensInSeconds: windowState === 'before' ? Math.ceil((start - now) / 1000) : null,
        closesInSeconds: windowState === 'open' ? Math.ceil((end - now) / 1000) : null,
      },
      authoritative: { side: authSide, ttl: authTtl, highestTtlSeen: this.#highestAuthTtl, safeToSwitchAt, servers },
      resolvers,
      delivery,
      roundtrips,
      servers: serverStatus,
      safeToSwitch: this.#safeToSwitch(now, windowState, safeToSwitchAt, lowered, serverStatus, delivery),
      safeToTurnOldOff: this.#safeToTurnOff(authSide, resolvers, figures, delivery, oldIpTraffic),
      oldIpTraffic,
      probes,
    };
  }

  #regionResolvers(): RegionResolvers[] {
    const by = new Map<string, ResolverState[]>();
    for (const s of this.#resolvers.values()) {
      const list = by.get(s.region) ?? [];
      list.push(s);
      by.set(s.region, list);
    }
    return [...by.entries()]
      .sort(([a], [b]) => cmp(a, b))
      .map(([region, list]) => {
        list.sort((a, b) => cmp(a.resolver, b.resolver));
        const names = (f: (s: ResolverState) => boolean) => list.filter(f).map((s) => s.resolver);
        const judged = list.filter((s) => s.ttlVerdict !== null);
        const violators = list.flatMap((s) =>
          s.ttlVerdict?.violation
            ? [{ resolver: s.resolver, name: s.name, staleSeconds: s.ttlVerdict.staleSeconds, extensionSeconds: s.ttlVerdict.extensionSeconds }]
            : [],
        );
        return {
          region,
          onOld: names((s) => s.side === 'old'),
          onNew: names((s) => s.side === 'new'),
          onBoth: names((s) => s.side === 'both'),
          failing: names((s) => s.side === 'error' || s.side === 'none' || s.side === 'other'),
          ttlHonour: {
            honoured: judged.length - violators.length,
            judged: judged.length,
            ratio: judged.length === 0 ? null : (judged.length - violators.length) / judged.length,
          },
          violators,
          resolvers: list.map((s) => ({
            resolver: s.resolver,
            name: s.name,
            side: s.side,
            answers: s.answers,
            ttl: s.ttl,
            at: s.at,
            errorClass: s.errorClass,
            message: s.message,
            honoursTtl: s.ttlVerdict === null ? null : !s.ttlVerdict.violation,
            staleSeconds: s.ttlVerdict?.staleSeconds ?? 0,
            extensionSeconds: s.ttlVerdict?.extensionSeconds ?? 0,
          })),
        };
      });
  }

  #deliveryRows(): DeliveryRow[] {
    return this.#serverRegionRows(this.#delivery.values(), (s) => {
      const outcomes = s.outcomes.values();
      return {
        sessions: s.sessions,
        successRatio: ratio(outcomes),
        recentSuccessRatio: ratio(s.outcomes.last(RECENT)),
        lastErrorClass: s.lastErrorClass,
        lastError: s.lastError,
        lastErrorAt: s.lastErrorAt,
        lastAt: s.lastAt,
      };
    });
  }

  #roundtripRows(): RoundtripRow[] {
    return this.#serverRegionRows(this.#roundtrips.values(), (s) => {
      const o = s.outcomes.values();
      return {
        delivered: o.filter((x) => x === 2).length,
        lost: o.filter((x) => x === 1).length,
        failed: o.filter((x) => x === 0).length,
        verdicts: s.verdicts,
        lastAt: s.lastAt,
      };
    });
  }

  /** One row per (server, region) state: the server as the plan names it, the latency quantiles and `own`'s fields; sorted by server and region. */
  #serverRegionRows<S extends { ip: string; side: Side; region: string; latencies: Ring }, R>(states: Iterable<S>, own: (s: S) => R): (ServerRegionRow & R)[] {
    return [...states]
      .map((s) => {
        const lat = s.latencies.values();
        const srv = this.#server(s.ip, s.side);
        return {
          ip: s.ip,
          name: srv.name,
          side: srv.side,
          region: s.region,
          p50Seconds: quantile(lat, 0.5),
          p95Seconds: quantile(lat, 0.95),
          ...own(s),
        };
      })
      .sort(byServerRegion);
  }

  #serverStatus(now: number, delivery: readonly DeliveryRow[]): ServerStatus[] {
    const plan = this.#plan.cutover;
    const ev = (k: string) => this.#evidence.get(k);
    const domainWide: CheckLine[] = [];
    const dkim = plan.dkim_selectors.map((sel) => [sel, ev(`dkim|${sel}`)] as const);
    domainWide.push(
      dkim.length === 0
        ? { check: 'dkim', title: 'DKIM keys', verdict: 'warn', evidence: 'no selectors in the plan (cutover.dkim_selectors)', at: null }
        : {
            check: 'dkim',
            title: 'DKIM keys',
            verdict: worst(dkim.map(([, e]) => (e === undefined ? 'unknown' : e.pass ? 'pass' : 'fail'))),
            evidence: dkim
              .map(([sel, e]) => `${sel}: ${e === undefined ? 'not checked yet' : e.pass ? 'key published' : `broken${e.detail ? ` (${e.detail})` : ''}`}`)
              .join('; '),
            at: newest(dkim.map(([, e]) => e?.at)),
          },
    );
    const dmarc = ev(`dmarc|${plan.domain}`);
    domainWide.push(
      line('dmarc', 'DMARC', dmarc, (e) => (e.pass ? `published${e.detail ? `: ${e.detail}` : ''}` : `missing or broken${e.detail ? `: ${e.detail}` : ''}`)),
    );
    const sts = ev(`mta-sts|${plan.domain}`);
    domainWide.push(
      line(
        'mta-sts',
        'MTA-STS',
        sts,
        (e) => (e.pass ? `policy valid${e.detail ? `: ${e.detail}` : ''}` : `policy missing or invalid${e.detail ? `: ${e.detail}` : ''}`),
        'warn',
      ),
    );

    return plan.servers.map((srv) => {
      const name = srv.name ?? srv.ip;
      const checks: CheckLine[] = [];
      const rdns = ev(`rdns|${srv.ip}`);
      checks.push(
        rdns === undefined
          ? { check: 'ptr', title: 'PTR and FCrDNS', verdict: 'unknown', evidence: 'not checked yet', at: null }
          : !rdns.ok
            ? { check: 'ptr', title: 'PTR and FCrDNS', verdict: 'fail', evidence: `lookup failed: ${rdns.detail}`, at: rdns.at }
            : {
                check: 'ptr',
                title: 'PTR and FCrDNS',
                // A PTR that is the mail host confirms only while the mail host points at the IP:
                // what counts for readiness is FCrDNS once the IP is served (now and after the switch).
                verdict: rdns.fcrdns || rdns.matches ? 'pass' : 'fail',
                evidence: `PTR ${rdns.ptr?.length ? rdns.ptr.join(', ') : '(none)'}; FCrDNS now: ${rdns.fcrdns ? 'yes' : 'no'}; once ${plan.mail_host} points at ${srv.ip}: ${rdns.fcrdns || rdns.matches ? 'yes' : 'no'}`,
                at: rdns.at,
              },
      );
      checks.push(
        line(
          'spf',
          'SPF pass',
          ev(`spf|${srv.ip}`),
          (e) => `${e.pass ? `${srv.ip} is allowed` : `${srv.ip} is not allowed`}${e.detail ? ` (${e.detail})` : ''}`,
        ),
      );
      checks.push(...domainWide.filter((l) => l.check === 'dkim' || l.check === 'dmarc'));
      const lists = plan.dnsbl.map((list) => [list, ev(`dnsbl|${srv.ip}|${list}`)] as const);
      checks.push(
        lists.length === 0
          ? { check: 'dnsbl', title: 'Blocklists', verdict: 'warn', evidence: 'no blocklists in the plan (cutover.dnsbl)', at: null }
          : {
              check: 'dnsbl',
              title: 'Blocklists',
              verdict: worst(lists.map(([, e]) => (e === undefined || !e.ok ? 'unknown' : e.listed ? 'fail' : 'pass'))),
              evidence: (() => {
                const listed = lists.filter(([, e]) => e?.listed).map(([l, e]) => `${l}${e?.detail ? ` (${e.detail})` : ''}`);
                const unknown = lists.filter(([, e]) => e === undefined || !e.ok).map(([l]) => l);
                return [
                  listed.length ? `listed on ${listed.join(', ')}` : `not listed on ${lists.length - unknown.length} of ${lists.length}`,
                  unknown.length ? `no answer yet from ${unknown.join(', ')}` : '',
                ]
                  .filter(Boolean)
                  .join('; ');
              })(),
              at: newest(lists.map(([, e]) => e?.at)),
            },
      );
      const tls = this.#tls.get(srv.ip);
      checks.push(certLine(tls, now, plan.mail_host));
      checks.push(...domainWide.filter((l) => l.check === 'mta-sts'));
      checks.push(tlsaLine(ev('tlsa|'), this.#dane.get(srv.ip), `_25._tcp.${plan.mail_host}`, srv.ip));
      const rows = delivery.filter((d) => d.ip === srv.ip);
      const failingRegions = rows
        .filter((d) => (d.recentSuccessRatio ?? 0) < 0.9)
        .map((d) => `${d.region} ${pct(d.recentSuccessRatio)} of the last ${RECENT}${d.lastErrorClass ? ` (${d.lastErrorClass})` : ''}`);
      checks.push(
        rows.length === 0
          ? { check: 'delivery', title: 'SMTP sessions', verdict: 'unknown', evidence: 'no session yet', at: null }
          : {
              check: 'delivery',
              title: 'SMTP sessions',
              verdict: failingRegions.length === 0 ? 'pass' : 'fail',
              evidence:
                failingRegions.length === 0
                  ? `succeeding from ${rows.map((d) => `${d.region} ${pct(d.recentSuccessRatio)}`).join(', ')} of the last ${RECENT} sessions`
                  : `failing from ${failingRegions.join(', ')}`,
              at: newest(rows.map((d) => d.lastAt)),
            },
      );
      return { ip: srv.ip, name, side: srv.side, verdict: worst(checks.map((c) => c.verdict)), checks };
    });
  }

  #safeToSwitch(
    now: number,
    windowState: string,
    safeAt: number | null,
    lowered: boolean,
    servers: readonly ServerStatus[],
    delivery: readonly DeliveryRow[],
  ): Decision {
    const conditions: Condition[] = [];
    conditions.push({
      title: 'inside the cutover window',
      met: windowState === 'open',
      detail: windowState === 'before' ? 'the window has not opened' : windowState === 'after' ? 'the window has closed' : 'the window is open',
    });
    conditions.push({
      title: 'the lowered TTL has run out everywhere',
      met: safeAt !== null && safeAt <= now,
      detail:
        safeAt !== null
          ? safeAt <= now
            ? `since ${iso(safeAt)}`
            : `at ${iso(safeAt)}`
          : lowered
            ? 'a lower TTL is served; waiting for the probes to date it'
            : 'no lowered TTL seen at the authoritative servers',
    });
    for (const s of servers.filter((x) => x.side === 'new')) {
      const blocking = s.checks.filter((c) => REQUIRED.has(c.check) && (c.verdict === 'fail' || c.verdict === 'unknown'));
      conditions.push({
        title: `${s.name} (${s.ip}) ready`,
        met: blocking.length === 0,
        detail:
          blocking.length === 0
            ? 'every check passes'
            : blocking.map((c) => `${c.title}: ${c.verdict === 'unknown' ? 'not checked yet' : c.evidence}`).join('; '),
      });
    }
    if (!delivery.some((d) => d.side === 'new'))
      conditions.push({ title: 'delivery to the new server measured', met: false, detail: 'no SMTP session to a new-side IP yet' });
    return decide(conditions);
  }

  #oldIpTraffic(now: number): OldIpTraffic[] {
    const quietMs = this.#plan.probes.decommission_quiet;
    return [...this.#mta.values()]
      .filter((x) => x.side === 'old')
      .sort((a, b) => cmp(a.ip, b.ip))
      .map((m) => ({
        ip: m.ip,
        name: this.#names.get(m.ip)?.name ?? m.ip,
        lastSessionAt: m.lastSessionAt,
        quietSeconds: Math.max(0, Math.floor((now - m.lastSessionAt) / 1000)),
        quiet: now - m.lastSessionAt >= quietMs,
        stillDelivering: [...m.nets.values()]
          .filter((n) => n.sessions > 0 && now - n.lastAt < quietMs)
          .sort((a, b) => b.sessions - a.sessions || cmp(a.net, b.net))
          .slice(0, 10)
          .map(({ net, sessions, messages, lastAt }) => ({ net, sessions, messages, lastAt })),
      }));
  }

  #safeToTurnOff(
    authSide: AnswerSide | null,
    resolvers: readonly RegionResolvers[],
    figures: readonly { safeToDecommission: boolean | null }[],
    delivery: readonly DeliveryRow[],
    oldIpTraffic: readonly OldIpTraffic[],
  ): Decision {
    const conditions: Condition[] = [];
    conditions.push({
      title: 'the authoritative servers answer only the new IP',
      met: authSide === 'new',
      detail: authSide === null ? 'no authoritative answer yet' : `they answer ${authSide}`,
    });
    const onOld = resolvers.flatMap((r) =>
      r.resolvers
        .filter((x) => x.side === 'old' || x.side === 'both')
        .map((x) => `${x.name === x.resolver ? x.resolver : `${x.name} (${x.resolver})`} in ${r.region}`),
    );
    conditions.push({
      title: 'no resolver answers the old IP',
      met: resolvers.length > 0 && onOld.length === 0,
      detail:
        resolvers.length === 0 ? 'no resolver answer yet' : onOld.length === 0 ? 'every resolver answers the new IP' : `still on old: ${onOld.join(', ')}`,
    });
    const quietMs = this.#plan.probes.decommission_quiet;
    const quiet = figures.length > 0 && figures.every((f) => f.safeToDecommission === true);
    conditions.push({
      title: `no old answer anywhere for ${formatDuration(quietMs)} (probes.decommission_quiet)`,
      met: quiet,
      detail: figures.length === 0 ? 'no ttl analysis yet' : quiet ? 'quiet in every region' : 'old answers seen recently',
    });
    // The old server's own traffic, where a log follower reports on an old IP.
    for (const m of oldIpTraffic) {
      const still = m.stillDelivering.map((n) => `${n.net} (${n.sessions} session${n.sessions === 1 ? '' : 's'})`).join(', ');
      conditions.push({
        title: `no inbound session on ${m.name === m.ip ? m.ip : `${m.name} (${m.ip})`} for ${formatDuration(quietMs)} (mailprobe mta-log)`,
        met: m.quiet,
        detail: `last session ${iso(m.lastSessionAt)}${!m.quiet && still ? `; still delivering: ${still}` : ''}`,
      });
    }
    const newRows = delivery.filter((d) => d.side === 'new');
    const bad = newRows.filter((d) => (d.recentSuccessRatio ?? 0) < 0.9);
    conditions.push({
      title: 'delivery to the new server succeeds from every region',
      met: newRows.length > 0 && bad.length === 0,
      detail:
        newRows.length === 0
          ? 'no session to a new-side IP yet'
          : bad.length === 0
            ? 'succeeding'
            : `failing from ${bad.map((d) => `${d.region} → ${d.ip}`).join(', ')}`,
    });
    return decide(conditions);
  }
}

function decide(conditions: Condition[]): Decision {
  const open = conditions.filter((c) => !c.met);
  return { safe: open.length === 0, open, conditions };
}

function line(check: CheckLine['check'], title: string, e: Evidence | undefined, say: (e: Evidence) => string, missing: Verdict = 'fail'): CheckLine {
  if (e === undefined) return { check, title, verdict: 'unknown', evidence: 'not checked yet', at: null };
  if (!e.ok) return { check, title, verdict: 'fail', evidence: `check failed: ${e.detail}`, at: e.at };
  return { check, title, verdict: e.pass ? 'pass' : missing, evidence: say(e), at: e.at };
}

/**
 * TLSA per server IP, as mailprobe_tlsa_match: whether a record published for the mail host
 * matches the certificate this IP presented. No records (the newer fact) warns: DANE is not used.
 */
function tlsaLine(published: Evidence | undefined, dane: { match: boolean; detail: string; at: number } | undefined, name: string, ip: string): CheckLine {
  const base = { check: 'tlsa' as const, title: 'TLSA (DANE)' };
  if (published !== undefined && (dane === undefined || published.at >= dane.at)) {
    if (!published.ok) return { ...base, verdict: 'fail', evidence: `check failed: ${published.detail}`, at: published.at };
    if (!published.pass)
      return { ...base, verdict: 'warn', evidence: `none at ${name} (DANE not used)${published.detail ? `: ${published.detail}` : ''}`, at: published.at };
  }
  if (dane === undefined)
    return published === undefined
      ? { ...base, verdict: 'unknown', evidence: 'not checked yet', at: null }
      : {
          ...base,
          verdict: 'unknown',
          evidence: `published at ${name}; not matched yet against the certificate ${ip} presents (no TLS session since)`,
          at: published.at,
        };
  const at = Math.max(dane.at, published?.at ?? 0);
  return dane.match
    ? { ...base, verdict: 'pass', evidence: `a record at ${name} matches the certificate ${ip} presents${dane.detail ? ` (${dane.detail})` : ''}`, at }
    : {
        ...base,
        verdict: 'fail',
        evidence: `no record at ${name} matches the certificate ${ip} presents${dane.detail ? ` (${dane.detail})` : ''}: DANE senders defer mail to it while it is served`,
        at,
      };
}

function certLine(tls: TlsState | undefined, now: number, host: string): CheckLine {
  const base = { check: 'certificate' as const, title: 'Certificate' };
  if (tls === undefined) return { ...base, verdict: 'unknown', evidence: 'no TLS session yet', at: null };
  if (tls.expiry === null) return { ...base, verdict: 'fail', evidence: `TLS failed: ${tls.error ?? 'unknown error'}`, at: tls.at };
  const days = Math.floor((tls.expiry - now) / 86_400_000);
  const when = `expires ${iso(tls.expiry)} (${days} days)`;
  if (!tls.verified)
    return { ...base, verdict: 'fail', evidence: `does not verify for ${host} (names ${tls.names.join(', ') || 'none'}); ${when}`, at: tls.at };
  if (tls.expiry <= now) return { ...base, verdict: 'fail', evidence: `expired ${iso(tls.expiry)}`, at: tls.at };
  return { ...base, verdict: days < CERT_WARN_DAYS ? 'warn' : 'pass', evidence: `valid for ${host}; ${when}`, at: tls.at };
}

function phaseText(phase: Phase, resolvers: readonly RegionResolvers[]): string {
  const old = resolvers.reduce((n, r) => n + r.onOld.length + r.onBoth.length, 0);
  switch (phase) {
    case 'before-window':
      return 'before the window: the old server is in service';
    case 'ttl-lowered':
      return 'TTL lowered: waiting for the old TTL to run out';
    case 'window-open':
      return 'window open: ready for the switch';
    case 'switched':
      return `switched: ${old} resolver${old === 1 ? '' : 's'} still answer${old === 1 ? 's' : ''} the old IP`;
    case 'propagated':
      return 'switched: every resolver answers the new IP';
    case 'after-window':
      return 'after the window';
  }
}

const byServerRegion = (a: { side: string; ip: string; region: string }, b: { side: string; ip: string; region: string }) =>
  cmp(a.side, b.side) * -1 || cmp(a.ip, b.ip) || cmp(a.region, b.region);
const newest = (ats: readonly (number | undefined)[]): number | null =>
  ats.reduce<number | null>((m, a) => (a === undefined ? m : m === null ? a : Math.max(m, a)), null);
const pct = (r: number | null): string => (r === null ? '-' : `${Math.round(r * 100)}%`);
/** Plain code-unit order: stable, and far cheaper than localeCompare on hundreds of rows. */
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
export const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
