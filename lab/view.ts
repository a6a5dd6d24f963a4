/**
 * The lab's terminal view: what an operator of the cutover asks, answered from the collector's
 * registry and series store (what Prometheus would scrape): per region which resolver (by name) answers which IP
 * and how many of the resolvers tested honour the TTL; per server IP its SMTP sessions (ok/all,
 * p50/p95, last error) and round trips (delivered / failed / lost, p50/p95); whether switching and
 * turning the old server off are safe, and why; the alerts firing. Counters and histograms are
 * differences between two snapshots (the last view interval, or the whole run), gauges the latest.
 */
import type { Registry } from 'prom-client';
import type { SeriesStore } from '../collector/store/series-store.js';
import { METRICS } from '../protocol/metrics.js';

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

type Snapshot = Map<string, Sample[]>;

/** The collector's own metrics (registry) and its result series (store), as they stand now. */
export async function snapshot(registry: Registry, store?: SeriesStore): Promise<Snapshot> {
  const out: Snapshot = new Map();
  // Copied: prom-client hands out its live counter objects, which later increments mutate.
  for (const m of [...(await registry.getMetricsAsJSON()), ...(store?.toJSON() ?? [])])
    out.set(
      m.name,
      ((m.values ?? []) as Sample[]).map((v) => ({ ...v, labels: { ...v.labels } })),
    );
  return out;
}

export interface TtlHonour {
  /** Tested resolvers that did not serve an old answer past its TTL. */
  honoured: number;
  /** Resolvers observed across a TTL expiry. */
  tested: number;
  /** Resolvers not yet observed across an expiry: not counted either way. */
  unknown: number;
}

export interface ResolverFigure {
  name: string;
  /** Side of its last A answer (old, new, both, none, error…). */
  side: string;
  tested: boolean;
  violation: boolean;
}

export interface RegionFigures {
  region: string;
  resolvers: ResolverFigure[];
  ttl: TtlHonour;
}

export interface Quantiles {
  p50: number | undefined;
  p95: number | undefined;
}

export interface IpFigures extends Quantiles {
  ip: string;
  side: string;
  /** cutover.servers[].name (the IP when unnamed). */
  name: string;
  checks: number;
  ok: number;
  lastError: string | undefined;
  roundtrip: { delivered: number; failed: number; lost: number } & Quantiles;
  /** Inbox-check messages via this IP by where the seed mailboxes filed them (every receiver). */
  inbox: { inbox: number; spam: number; other: number; lost: number; failed: number };
}

export interface Figures {
  regions: RegionFigures[];
  /** Over every region (a resolver asked by two probes counts once per probe). */
  ttl: TtlHonour;
  ips: IpFigures[];
  /** When switching is safe (Unix ms), the latest any probe reports; undefined before a lowered TTL is seen. */
  safeToSwitchAt: number | undefined;
  /** Every probe reports the old IP quiet for the quiet time; undefined before any reports. */
  safeToDecommission: boolean | undefined;
  /** Resolvers whose last answer still holds the old IP, as `name (region)`. */
  onOldIp: string[];
  /** The old server's own traffic, per old-side IP a log follower (mailprobe mta-log) reports on. */
  oldServer: OldServerFigure[];
}

export interface OldServerFigure {
  ip: string;
  name: string;
  /** The last inbound session (or when the follower started, if none since), Unix ms. */
  lastSessionAt: number;
  /** No inbound session for probes.decommission_quiet (the follower's judgement). */
  quiet: boolean;
  /** Client networks with inbound sessions since the previous view, most first. */
  networks: { net: string; sessions: number }[];
}

const str = (v: string | number | undefined) => (v === undefined ? '' : String(v));
const isBucket = (s: Sample) => s.metricName?.endsWith('_bucket') ?? false;

/** Sums `value` of samples matching `where`, grouped by `key`. */
function sumBy(samples: Sample[] | undefined, key: (s: Sample) => string, where: (s: Sample) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples ?? []) if (where(s)) out.set(key(s), (out.get(key(s)) ?? 0) + s.value);
  return out;
}

/** The q-quantile of cumulative bucket counts (le → count), interpolated within the bucket as histogram_quantile does. */
export function bucketQuantile(q: number, buckets: Map<number, number>): number | undefined {
  const les = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? (les.length > 0 ? buckets.get(les[les.length - 1] ?? 0) : 0) ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const count = buckets.get(le) ?? 0;
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

const honour = (rs: readonly ResolverFigure[]): TtlHonour => {
  const tested = rs.filter((r) => r.tested);
  return { honoured: tested.filter((r) => !r.violation).length, tested: tested.length, unknown: rs.length - tested.length };
};

/** The figures from the difference between two snapshots (counters, histograms) and the latest (gauges). */
export function summarize(prev: Snapshot | undefined, cur: Snapshot): Figures {
  const delta = (name: string, key: (s: Sample) => string, where?: (s: Sample) => boolean) => {
    const now = sumBy(cur.get(name), key, where);
    const before = prev ? sumBy(prev.get(name), key, where) : new Map<string, number>();
    return new Map([...now].map(([k, v]) => [k, v - (before.get(k) ?? 0)]));
  };
  /** Per `key`: quantiles of the histogram's bucket increases. */
  const quantiles = (name: string, key: (s: Sample) => string) => {
    const d = delta(name, (s) => `${key(s)}\u0000${s.labels.le}`, isBucket);
    const per = new Map<string, Map<number, number>>();
    for (const [k, n] of d) {
      const [id = '', le = ''] = k.split('\u0000');
      const m = per.get(id) ?? new Map<number, number>();
      m.set(le === '+Inf' ? Infinity : Number(le), n);
      per.set(id, m);
    }
    return (id: string): Quantiles => {
      const b = per.get(id);
      return b ? { p50: bucketQuantile(0.5, b), p95: bucketQuantile(0.95, b) } : { p50: undefined, p95: undefined };
    };
  };
  const gauge = (name: string) => cur.get(name) ?? [];

  // Resolvers: one per (region, probe, resolver), authoritative servers left out.
  const resolverKey = (s: Sample) => `${s.labels.region}|${s.labels.probe}|${s.labels.resolver}`;
  const byResolver = new Map<string, ResolverFigure & { region: string }>();
  for (const s of gauge(METRICS.dnsAnswerSide.name)) {
    if (s.labels.type !== 'A' || str(s.labels.resolver).startsWith('auth:') || s.value !== 1) continue;
    byResolver.set(resolverKey(s), {
      region: str(s.labels.region),
      name: str(s.labels.resolver_name ?? s.labels.resolver),
      side: str(s.labels.side),
      tested: false,
      violation: false,
    });
  }
  for (const s of gauge(METRICS.dnsTtlTested.name)) {
    const r = byResolver.get(resolverKey(s));
    if (r && s.value === 1) r.tested = true;
  }
  for (const s of gauge(METRICS.dnsTtlViolation.name)) {
    const r = byResolver.get(resolverKey(s));
    if (r && s.value === 1) r.violation = r.tested = true;
  }
  const all = [...byResolver.values()];
  const regions = [...new Set(all.map((r) => r.region))].sort().map((region) => {
    const resolvers = all.filter((r) => r.region === region).sort((a, b) => a.name.localeCompare(b.name));
    return { region, resolvers: resolvers.map(({ region: _r, ...f }) => f), ttl: honour(resolvers) };
  });

  // Server IPs: names from the plan (mailprobe_server_info), SMTP and round trips from the results.
  const names = new Map(gauge(METRICS.serverInfo.name).map((s) => [str(s.labels.ip), { side: str(s.labels.side), name: str(s.labels.server_name) }]));
  const checks = delta(METRICS.smtpChecks.name, (s) => `${s.labels.ip}|${s.labels.side}|${s.labels.result}`);
  const rt = delta(METRICS.roundtrips.name, (s) => `${s.labels.via_ip}|${s.labels.side}|${s.labels.result}`);
  const session = quantiles(METRICS.smtpSessionDuration.name, (s) => str(s.labels.ip));
  const rtq = quantiles(METRICS.roundtripDuration.name, (s) => str(s.labels.via_ip));
  const placed = delta(METRICS.inboxes.name, (s) => `${s.labels.via_ip}|${s.labels.side}|${s.labels.result}`);
  const ips = new Map<string, IpFigures>();
  const ipOf = (ip: string, side: string): IpFigures => {
    let f = ips.get(ip);
    if (!f) {
      f = {
        ip,
        side,
        name: names.get(ip)?.name ?? ip,
        checks: 0,
        ok: 0,
        lastError: undefined,
        ...session(ip),
        roundtrip: { delivered: 0, failed: 0, lost: 0, ...rtq(ip) },
        inbox: { inbox: 0, spam: 0, other: 0, lost: 0, failed: 0 },
      };
      ips.set(ip, f);
    }
    return f;
  };
  for (const [ip, n] of names) ipOf(ip, n.side);
  for (const [key, n] of checks) {
    const [ip = '', side = '', result = ''] = key.split('|');
    const f = ipOf(ip, side);
    f.checks += n;
    if (result === 'success') f.ok += n;
    else if (n > 0) f.lastError = result;
  }
  for (const [key, n] of rt) {
    const [ip = '', side = '', result = ''] = key.split('|');
    const r = ipOf(ip, side).roundtrip;
    if (result === 'delivered' || result === 'failed' || result === 'lost') r[result] += n;
  }
  for (const [key, n] of placed) {
    const [ip = '', side = '', result = ''] = key.split('|');
    const r = ipOf(ip, side).inbox;
    if (result === 'inbox' || result === 'spam' || result === 'other' || result === 'lost' || result === 'failed') r[result] += n;
  }

  const oldNets = delta(
    METRICS.mtaInboundSessions.name,
    (s) => `${str(s.labels.ip)}|${str(s.labels.client_net)}`,
    (s) => s.labels.side === 'old',
  );
  const oldServer = gauge(METRICS.mtaLastInboundSession.name)
    .filter((s) => s.labels.side === 'old')
    .map((s) => {
      const ip = str(s.labels.ip);
      const networks = [...oldNets]
        .filter(([k, n]) => k.startsWith(`${ip}|`) && n > 0)
        .map(([k, n]) => ({ net: k.slice(ip.length + 1), sessions: n }))
        .sort((a, b) => b.sessions - a.sessions || a.net.localeCompare(b.net));
      const quiet = gauge(METRICS.mtaInboundQuiet.name).some((q) => q.labels.ip === ip && q.labels.server === s.labels.server && q.value === 1);
      return { ip, name: names.get(ip)?.name ?? ip, lastSessionAt: s.value * 1000, quiet, networks };
    })
    .sort((a, b) => a.ip.localeCompare(b.ip));
  const switchAt = gauge(METRICS.safeToSwitch.name).map((s) => s.value * 1000);
  const decommission = gauge(METRICS.safeToDecommission.name);
  return {
    regions,
    ttl: honour(all),
    ips: [...ips.values()].sort((a, b) => (a.side === b.side ? a.ip.localeCompare(b.ip) : a.side === 'old' ? -1 : 1)),
    safeToSwitchAt: switchAt.length > 0 ? Math.max(...switchAt) : undefined,
    safeToDecommission: decommission.length > 0 ? decommission.every((s) => s.value === 1) : undefined,
    onOldIp: all.filter((r) => r.side === 'old' || r.side === 'both').map((r) => `${r.name} (${r.region})`),
    oldServer,
  };
}

const secs = (s: number | undefined) => (s === undefined ? '-' : s < 1 ? `${(s * 1000).toFixed(0)}ms` : `${s.toFixed(s < 10 ? 2 : 1)}s`);
const clock = (msLeft: number) => {
  const s = Math.max(0, Math.round(msLeft / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const pct = (t: TtlHonour) =>
  `${t.tested === 0 ? 'none tested yet' : `${t.honoured} of ${t.tested} (${Math.round((100 * t.honoured) / t.tested)} %)`}${t.unknown > 0 ? `, ${t.unknown} not yet known` : ''}`;

export interface ViewState {
  title: string;
  now: number;
  startedAt: number;
  endsAt: number;
  windowStart: number;
  windowEnd: number;
  serving: string;
  ttl: number;
  lastEvent: string | undefined;
  nextEvent: { label: string; at: number } | undefined;
  figures: Figures;
  alerts: string[] | undefined;
  collectorUrl: string;
  /** The end-of-run summary: the figures are the whole run's, with the timeline's events. */
  final?: { events: readonly { at: number; label: string }[] };
}

export function render(v: ViewState): string {
  const f = v.figures;
  const inWindow = v.now >= v.windowStart && v.now < v.windowEnd;
  const phase =
    v.now < v.windowStart
      ? `before the window (opens in ${clock(v.windowStart - v.now)})`
      : inWindow
        ? `IN THE WINDOW (${clock(v.windowEnd - v.now)} left)`
        : 'after the window';
  const lines = [v.title];
  if (v.final) {
    lines.push(`summary of the whole run (${clock(v.endsAt - v.startedAt)}): authoritative serves the ${v.serving} IP, TTL ${v.ttl}s`);
    lines.push(`timeline: ${v.final.events.map((e) => `${clock(e.at - v.startedAt)} ${e.label}`).join('; ')}`);
  } else {
    lines.push(`lab time ${clock(v.now - v.startedAt)} / ${clock(v.endsAt - v.startedAt)}   ${phase}`);
    lines.push(
      `authoritative: serves ${v.serving} IP, TTL ${v.ttl}s   last: ${v.lastEvent ?? '-'}${v.nextEvent ? `   next: ${v.nextEvent.label} in ${clock(v.nextEvent.at - v.now)}` : ''}`,
    );
  }

  // Resolvers: one column per name, the side of its last A answer ("·": not asked in that region).
  const names = [...new Set(f.regions.flatMap((r) => r.resolvers.map((x) => x.name)))].sort();
  const width = names.map((n) => Math.max(n.length, 5) + 2);
  lines.push(
    '',
    'resolvers: last A answer per resolver; TTL honoured = of the resolvers seen across a TTL expiry, those that did not serve the old answer past it',
  );
  lines.push(`${'region'.padEnd(8)}${names.map((n, i) => n.padEnd(width[i] ?? 8)).join('')}TTL honoured`);
  for (const r of f.regions) {
    const cells = names.map((n, i) => {
      const x = r.resolvers.find((y) => y.name === n);
      return (x ? `${x.side}${x.violation ? '!' : ''}` : '·').padEnd(width[i] ?? 8);
    });
    lines.push(`${r.region.padEnd(8)}${cells.join('')}${pct(r.ttl)}`);
  }
  lines.push(`${'all'.padEnd(8)}${''.padEnd(width.reduce((a, b) => a + b, 0))}${pct(f.ttl)}   (! = served the old answer past its TTL)`);

  // Server IPs.
  const label = (d: IpFigures) => `${d.ip} (${d.side}${d.name !== d.ip ? `, ${d.name}` : ''})`;
  const w = Math.max(22, ...f.ips.map((d) => label(d).length)) + 2;
  lines.push('', `${'server IP'.padEnd(w)}SMTP ok/all  p50     p95     last error         round trips delivered/failed/lost  p50     p95`);
  for (const d of f.ips) {
    const r = d.roundtrip;
    lines.push(
      `${label(d).padEnd(w)}${`${d.ok}/${d.checks}`.padEnd(13)}${secs(d.p50).padEnd(8)}${secs(d.p95).padEnd(8)}${(d.lastError ?? '-').padEnd(19)}` +
        `${`${r.delivered} / ${r.failed} / ${r.lost}`.padEnd(35)}${secs(r.p50).padEnd(8)}${secs(r.p95)}`,
    );
  }

  // Inbox placement at the seed mailboxes (the inbox check), when it ran.
  if (f.ips.some((d) => Object.values(d.inbox).some((n) => n > 0))) {
    lines.push('', `${'inbox placement'.padEnd(w)}inbox / spam / other / lost / failed (test messages at the seed mailboxes)`);
    for (const d of f.ips) {
      const b = d.inbox;
      lines.push(`${label(d).padEnd(w)}${b.inbox} / ${b.spam} / ${b.other} / ${b.lost} / ${b.failed}`);
    }
  }

  // The two decisions, with their reason.
  lines.push('');
  const at = f.safeToSwitchAt;
  lines.push(
    `safe to switch: ${
      at === undefined
        ? 'not yet — no lowered TTL seen at the authoritative servers'
        : at > v.now
          ? `not yet — the TTL was lowered; caches may keep the old, longer TTL for ${clock(at - v.now)} more`
          : `yes, since ${clock(at - v.startedAt)} — the lowered TTL was seen at the authoritative servers and the TTL before it has run out`
    }`,
  );
  // The old server's own traffic (the log follower beside it) and the decision's two conditions.
  for (const o of f.oldServer) {
    const ago = v.now - o.lastSessionAt;
    lines.push(
      `old server ${o.name === o.ip ? o.ip : `${o.name} (${o.ip})`} (its log): last inbound session ${clock(ago)} ago; ${v.final ? 'delivering during the run' : 'delivering now'}: ${
        o.networks.length === 0 ? 'nobody' : o.networks.map((n) => `${n.net} (${n.sessions})`).join(', ')
      }`,
    );
  }
  const dnsOpen =
    f.safeToDecommission === true
      ? undefined
      : f.safeToDecommission === undefined
        ? 'DNS: no probe has judged it yet'
        : f.onOldIp.length > 0
          ? `DNS: still answering the old IP: ${f.onOldIp.join(', ')}`
          : 'DNS: a resolver answered the old IP within the quiet time';
  const busy = f.oldServer.filter((o) => !o.quiet);
  const trafficOpen =
    busy.length === 0
      ? undefined
      : `old IP: inbound sessions within the quiet time on ${busy.map((o) => o.ip).join(', ')}${
          busy.some((o) => o.networks.length > 0) ? ` from ${[...new Set(busy.flatMap((o) => o.networks.map((n) => n.net)))].join(', ')}` : ''
        }`;
  const open = [dnsOpen, trafficOpen].filter((x): x is string => x !== undefined);
  lines.push(
    `safe to turn the old server off: ${
      open.length === 0
        ? `yes — no resolver has answered the old IP${f.oldServer.length > 0 ? ' and no inbound session reached it' : ''} for the quiet time`
        : `${f.safeToDecommission === undefined && !trafficOpen ? 'not yet known' : 'no'} — still open: ${open.join('; ')}`
    }`,
  );
  lines.push(
    v.alerts === undefined
      ? 'alerts: (prometheus not installed: apt-get install prometheus to see them)'
      : `alerts firing: ${v.alerts.length === 0 ? 'none' : v.alerts.join(', ')}`,
  );
  lines.push(
    v.final
      ? `status page and metrics were at ${v.collectorUrl}/ and ${v.collectorUrl}/metrics`
      : `status page: ${v.collectorUrl}/   metrics: ${v.collectorUrl}/metrics   Ctrl-C stops the lab`,
  );
  return lines.join('\n');
}
