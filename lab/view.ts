/**
 * The lab's live terminal view: per region, which resolvers answer the old or the new IP, how
 * delivery to each IP goes, the round trip, and the alerts firing. Figures come from the
 * collector's registry (what Prometheus would scrape); rates are over the last view interval.
 */
import type { Registry } from 'prom-client';
import { METRICS } from '../protocol/metrics.js';

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

type Snapshot = Map<string, Sample[]>;

export async function snapshot(registry: Registry): Promise<Snapshot> {
  const out: Snapshot = new Map();
  // Copied: prom-client hands out its live counter objects, which later increments mutate.
  for (const m of await registry.getMetricsAsJSON()) out.set(m.name, ((m.values ?? []) as Sample[]).map((v) => ({ ...v, labels: { ...v.labels } })));
  return out;
}

export interface IpFigures {
  ip: string;
  side: string;
  checks: number;
  ok: number;
  /** Mean session time (sum of phases) over the interval, seconds. */
  meanSeconds: number | undefined;
  lastError: string | undefined;
}

export interface RegionFigures {
  region: string;
  /** Resolver → side of its last A answer (authoritative servers excluded). */
  resolvers: Record<string, string>;
  delivery: IpFigures[];
  roundtrip: { delivered: number; lost: number; meanSeconds: number | undefined };
}

const str = (v: string | number | undefined) => (v === undefined ? '' : String(v));

/** Sums `value` of samples matching `where`, grouped by `key`. */
function sumBy(samples: Sample[] | undefined, key: (s: Sample) => string, where: (s: Sample) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples ?? []) if (where(s)) out.set(key(s), (out.get(key(s)) ?? 0) + s.value);
  return out;
}

/** Figures per region from the difference between two snapshots (counters) and the latest (gauges). */
export function summarize(prev: Snapshot | undefined, cur: Snapshot): RegionFigures[] {
  const delta = (name: string, key: (s: Sample) => string, where?: (s: Sample) => boolean) => {
    const now = sumBy(cur.get(name), key, where);
    const before = prev ? sumBy(prev.get(name), key, where) : new Map<string, number>();
    return new Map([...now].map(([k, v]) => [k, v - (before.get(k) ?? 0)]));
  };
  const regions = new Set<string>();
  for (const s of cur.get(METRICS.dnsAnswerSide.name) ?? []) regions.add(str(s.labels.region));
  for (const s of cur.get(METRICS.smtpChecks.name) ?? []) regions.add(str(s.labels.region));

  const checks = delta(METRICS.smtpChecks.name, (s) => `${s.labels.region}|${s.labels.ip}|${s.labels.side}|${s.labels.result}`);
  const durSum = delta(METRICS.smtpDuration.name, (s) => `${s.labels.region}|${s.labels.ip}`, (s) => s.metricName?.endsWith('_sum') ?? false);
  const sessions = delta(METRICS.smtpDuration.name, (s) => `${s.labels.region}|${s.labels.ip}`, (s) => (s.metricName?.endsWith('_count') ?? false) && s.labels.phase === 'connect');
  const rt = delta(METRICS.roundtrips.name, (s) => `${s.labels.region}|${s.labels.result}`);
  const rtSum = delta(METRICS.roundtripDuration.name, (s) => str(s.labels.region), (s) => s.metricName?.endsWith('_sum') ?? false);
  const rtCount = delta(METRICS.roundtripDuration.name, (s) => str(s.labels.region), (s) => s.metricName?.endsWith('_count') ?? false);

  return [...regions].sort().map((region) => {
    const resolvers: Record<string, string> = {};
    for (const s of cur.get(METRICS.dnsAnswerSide.name) ?? []) {
      const r = str(s.labels.resolver);
      if (s.labels.region === region && s.labels.type === 'A' && !r.startsWith('auth:') && s.value === 1) resolvers[r] = str(s.labels.side);
    }
    const ips = new Map<string, IpFigures>();
    for (const [key, n] of checks) {
      const [reg, ip = '', side = '', result = ''] = key.split('|');
      if (reg !== region) continue;
      const f = ips.get(ip) ?? { ip, side, checks: 0, ok: 0, meanSeconds: undefined, lastError: undefined };
      f.checks += n;
      if (result === 'success') f.ok += n;
      else if (n > 0) f.lastError = result;
      ips.set(ip, f);
    }
    for (const f of ips.values()) {
      const count = sessions.get(`${region}|${f.ip}`) ?? 0;
      if (count > 0) f.meanSeconds = (durSum.get(`${region}|${f.ip}`) ?? 0) / count;
    }
    const rc = rtCount.get(region) ?? 0;
    return {
      region,
      resolvers,
      delivery: [...ips.values()].sort((a, b) => a.side.localeCompare(b.side) * -1),
      roundtrip: { delivered: rt.get(`${region}|delivered`) ?? 0, lost: rt.get(`${region}|lost`) ?? 0, meanSeconds: rc > 0 ? (rtSum.get(region) ?? 0) / rc : undefined },
    };
  });
}

const ms = (s: number | undefined) => (s === undefined ? '   -  ' : s < 1 ? `${(s * 1000).toFixed(0).padStart(4)}ms` : `${s.toFixed(2).padStart(5)}s`);
const clock = (msLeft: number) => {
  const s = Math.max(0, Math.round(msLeft / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

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
  regions: RegionFigures[];
  alerts: string[] | undefined;
  collectorUrl: string;
}

export function render(v: ViewState): string {
  const inWindow = v.now >= v.windowStart && v.now < v.windowEnd;
  const phase = v.now < v.windowStart ? `before the window (opens in ${clock(v.windowStart - v.now)})` : inWindow ? `IN THE WINDOW (${clock(v.windowEnd - v.now)} left)` : 'after the window';
  const lines = [
    v.title,
    `lab time ${clock(v.now - v.startedAt)} / ${clock(v.endsAt - v.startedAt)}   ${phase}`,
    `authoritative: serves ${v.serving} IP, TTL ${v.ttl}s   last: ${v.lastEvent ?? '-'}${v.nextEvent ? `   next: ${v.nextEvent.label} in ${clock(v.nextEvent.at - v.now)}` : ''}`,
    '',
    'region  resolvers (last A answer)                 delivery per IP (ok/checks, mean session)          round trip',
  ];
  for (const r of v.regions) {
    const sides = Object.values(r.resolvers);
    const count = (s: string) => sides.filter((x) => x === s).length;
    const res = `old ${count('old')}  new ${count('new')}  both ${count('both')}  err ${count('error') + count('none') + count('other')}`;
    const del = r.delivery.map((d) => `${d.side} ${d.ok}/${d.checks} ${ms(d.meanSeconds)}${d.lastError ? ` (${d.lastError})` : ''}`).join('  ');
    const rt = `${r.roundtrip.delivered} ok ${r.roundtrip.lost} lost ${ms(r.roundtrip.meanSeconds)}`;
    lines.push(`${r.region.padEnd(7)} ${res.padEnd(41)} ${del.padEnd(50)} ${rt}`);
    const stale = Object.entries(r.resolvers).filter(([, side]) => side === 'old' && v.serving === 'new');
    if (stale.length > 0) lines.push(`        still on the old IP: ${stale.map(([name]) => name).join(', ')}`);
  }
  lines.push('');
  lines.push(v.alerts === undefined ? 'alerts: (prometheus not installed: apt-get install prometheus to see them)' : `alerts firing: ${v.alerts.length === 0 ? 'none' : v.alerts.join(', ')}`);
  lines.push(`metrics: ${v.collectorUrl}/metrics   Ctrl-C stops the lab`);
  return lines.join('\n');
}
