/**
 * What the cutover report says, read from Prometheus for one time range: the timeline (TTL
 * lowered, A switched, each resolver's switch and its lag past the TTL), the TTL behaviour per
 * resolver, delivery before / during / after the window, failures by class, round trips, the
 * alerts that fired, and the series for the charts. Only raw mailprobe series and `ALERTS` are
 * read (no recording rules), so a Prometheus that only received remote write will do.
 */
import { METRICS } from '../protocol/metrics.js';
import { ReportError, type PromClient, type RangeSeries } from './prometheus.js';

const M = Object.fromEntries(Object.entries(METRICS).map(([k, d]) => [k, d.name])) as { [K in keyof typeof METRICS]: string };

export type Period = 'before' | 'during' | 'after';
export const PERIODS: readonly Period[] = ['before', 'during', 'after'];

export interface ResolverLine {
  region: string;
  resolver: string;
  /** The plan's name (the resolver_name label), else the label. */
  name: string;
  /** First answer of the new IP after the authoritative switch (Unix s), or null. */
  switchedAt: number | null;
  /** switchedAt − (A switched + the TTL served before the switch), at least 0; null if not switched. */
  lagSeconds: number | null;
  lastSide: string | null;
  violation: boolean | null;
  staleSeconds: number | null;
  extensionSeconds: number | null;
}

export interface LatencyLine {
  ip: string;
  side: string;
  period: Period;
  /** Round trip (sent → arrived at the sink) quantiles, seconds. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  smtpSessions: number;
  smtpSuccessRatio: number | null;
  smtpMeanSeconds: number | null;
}

export interface AlertLine {
  alertname: string;
  severity: string;
  labels: string;
  intervals: { from: number; to: number }[];
  seconds: number;
}

export interface ChartSeries {
  name: string;
  points: [number, number][];
}

export interface ReportData {
  prometheus: string;
  from: number;
  to: number;
  step: number;
  generatedAt: number;
  mailHost: string | null;
  window: { start: number; end: number } | null;
  timeline: { at: number; label: string }[];
  ttl: {
    before: number | null;
    lowered: number | null;
    loweredAt: number | null;
    raisedAt: number | null;
    atSwitch: number | null;
    safeToSwitchAt: number | null;
  };
  switchedAt: number | null;
  resolvers: ResolverLine[];
  ttlHonour: { honoured: number; judged: number };
  latency: LatencyLine[];
  failures: { type: string; result: string; count: number }[];
  smtpFailures: { ip: string; result: string; count: number }[];
  roundtrips: { ip: string; side: string; delivered: number; lost: number; failed: number }[];
  verdicts: { ip: string; method: string; result: string }[];
  alerts: AlertLine[];
  charts: { resolverSides: ChartSeries[]; roundtripP95: ChartSeries[]; smtpSuccess: ChartSeries[] };
  /** Sections without data, said in the report rather than failing it. */
  missing: string[];
}

const first = (s: RangeSeries | undefined, pred: (v: number, t: number) => boolean): number | null => s?.values.find(([t, v]) => pred(v, t))?.[0] ?? null;
const round = (n: number) => Math.round(n);

export async function gatherReport(prom: PromClient, opts: { url: string; from: number; to: number; now?: () => number }): Promise<ReportData> {
  const { from, to } = opts;
  if (!(to > from)) throw new ReportError(`--to (${new Date(to * 1000).toISOString()}) must be after --from (${new Date(from * 1000).toISOString()})`);
  const span = Math.max(1, Math.round(to - from));
  const R = `${span}s`;
  // At most ~1500 points per series; never finer than a second.
  const step = Math.max(1, Math.ceil(span / 1500));
  const W = `${Math.max(15, 10 * step)}s`;
  // How far back the last sample before a period's ends is looked for.
  const L = `${Math.max(300, 3 * step)}s`;
  const missing: string[] = [];

  const present = await prom.instant(`count(last_over_time(${M.dnsAnswerSide}[${R}]))`, to);
  if (present.length === 0 || present[0]?.value === 0) {
    throw new ReportError(
      `no ${M.dnsAnswerSide} series between ${iso(from)} and ${iso(to)} at ${opts.url}: is it the Prometheus that scrapes the mailprobe collector (or receives its remote write), and is the range right?`,
    );
  }
  const names = await prom.instant(`count by (name) (last_over_time(${M.dnsAnswerSide}{resolver=~"auth:.*",type=~"A|AAAA"}[${R}]))`, to);
  const mailHost = names[0]?.metric.name ?? null;

  const ws = await prom.instant(`max(last_over_time(${M.cutoverWindowStart}[${R}]))`, to);
  const we = await prom.instant(`max(last_over_time(${M.cutoverWindowEnd}[${R}]))`, to);
  const window = ws[0] && we[0] ? { start: ws[0].value, end: we[0].value } : null;
  if (!window) missing.push(`${M.cutoverWindowStart}: the window is unknown, so before/during/after cannot be told apart`);

  // The authoritative TTL and answer over time.
  const [ttlSeries] = await prom.range(`min(${M.dnsTtl}{resolver=~"auth:.*",type=~"A|AAAA"})`, from, to, step);
  const [authNew] = await prom.range(`max(${M.dnsAnswerSide}{resolver=~"auth:.*",type=~"A|AAAA",side="new"})`, from, to, step);
  if (!ttlSeries) missing.push(`${M.dnsTtl} of the authoritative servers: the TTL steps are unknown`);
  let maxBefore = -1;
  let loweredAt: number | null = null;
  let lowered: number | null = null;
  let before: number | null = null;
  for (const [t, v] of ttlSeries?.values ?? []) {
    if (loweredAt === null && maxBefore >= 0 && v < maxBefore) {
      loweredAt = t;
      lowered = v;
      before = maxBefore;
    }
    maxBefore = Math.max(maxBefore, v);
  }
  const raisedAt = loweredAt === null || lowered === null ? null : first(ttlSeries, (v, t) => t > loweredAt && v > lowered);
  const switchedAt = first(authNew, (v) => v === 1);
  // The probes' own dating: the first lowered TTL seen at the authoritative servers + the TTL before it.
  const safe = await prom.instant(`max(last_over_time(${M.safeToSwitch}[${R}]))`, to);
  const safeToSwitchAt = safe[0] && safe[0].value > 0 ? safe[0].value : null;
  const atSwitch = switchedAt === null ? null : ([...(ttlSeries?.values ?? [])].reverse().find(([t]) => t < switchedAt)?.[1] ?? null);

  // Each resolver: when it first answered the new IP, its TTL verdict, its last side.
  const resNew = await prom.range(`max by (region, resolver) (${M.dnsAnswerSide}{resolver!~"auth:.*",type=~"A|AAAA",side="new"})`, from, to, step);
  // The side each resolver answers at the end (a stale series ends when its side changed).
  const lastSide = await prom.instant(`max by (region, resolver, side) (${M.dnsAnswerSide}{resolver!~"auth:.*",type=~"A|AAAA"} == 1)`, to);
  const allRes = await prom.instant(
    `max by (region, resolver, resolver_name) (last_over_time(${M.dnsAnswerSide}{resolver!~"auth:.*",type=~"A|AAAA"}[${R}]))`,
    to,
  );
  const viol = await prom.instant(`max by (region, resolver) (max_over_time(${M.dnsTtlViolation}[${R}]))`, to);
  const stale = await prom.instant(`max by (region, resolver) (max_over_time(${M.dnsResolverStale}[${R}]))`, to);
  const ext = await prom.instant(`max by (region, resolver) (max_over_time(${M.dnsTtlExtension}[${R}]))`, to);
  const key = (m: Record<string, string>) => `${m.region ?? ''}\u0000${m.resolver ?? ''}`;
  const byKey = <T>(xs: { metric: Record<string, string> }[], f: (x: never) => T) => new Map(xs.map((x) => [key(x.metric), f(x as never)]));
  const violBy = byKey(viol, (x: { value: number }) => x.value);
  const staleBy = byKey(stale, (x: { value: number }) => x.value);
  const extBy = byKey(ext, (x: { value: number }) => x.value);
  const sideBy = byKey(lastSide, (x: { metric: Record<string, string> }) => x.metric.side ?? null);
  const newBy = new Map(resNew.map((s) => [key(s.metric), s]));
  const resolvers: ResolverLine[] = allRes
    .map((r) => {
      const k = key(r.metric);
      const sw = switchedAt === null ? null : first(newBy.get(k), (v, t) => v === 1 && t >= switchedAt);
      const v = violBy.get(k);
      return {
        region: r.metric.region ?? '',
        resolver: r.metric.resolver ?? '',
        name: r.metric.resolver_name || (r.metric.resolver ?? ''),
        switchedAt: sw,
        lagSeconds: sw === null || switchedAt === null ? null : Math.max(0, sw - (switchedAt + (atSwitch ?? 0))),
        lastSide: sideBy.get(k) ?? null,
        violation: v === undefined ? null : v > 0,
        staleSeconds: staleBy.get(k) ?? null,
        extensionSeconds: extBy.get(k) ?? null,
      };
    })
    .sort((a, b) => cmp(a.region, b.region) || cmp(a.resolver, b.resolver));
  const judged = resolvers.filter((r) => r.violation !== null);
  if (judged.length === 0) missing.push(`${M.dnsTtlViolation}: no resolver was judged by the ttl analysis`);

  // Delivery per IP before, during and after the window.
  const periods: { period: Period; a: number; b: number }[] = (
    window
      ? [
          { period: 'before' as const, a: from, b: Math.min(to, window.start) },
          { period: 'during' as const, a: Math.max(from, window.start), b: Math.min(to, window.end) },
          { period: 'after' as const, a: Math.max(from, window.end), b: to },
        ]
      : [{ period: 'during' as const, a: from, b: to }]
  ).filter((p) => p.b - p.a >= 2);
  const latency: LatencyLine[] = [];
  const knownIps = new Map<string, string>();
  for (const p of periods) {
    const at = p.b;
    const delta = (sel: string, by: string) => counted(sel, by, p.a, p.b, L);
    const q = async (x: number) => prom.instant(`histogram_quantile(${x}, ${delta(`${M.roundtripDuration}_bucket`, 'via_ip, side, le')})`, at);
    const [q50, q95, q99] = await Promise.all([q(0.5), q(0.95), q(0.99)]);
    const sessions = await prom.instant(delta(M.smtpChecks, 'ip, side'), at);
    const ok = await prom.instant(delta(`${M.smtpChecks}{result="success"}`, 'ip, side'), at);
    const mean = await prom.instant(`${delta(`${M.smtpDuration}_sum`, 'ip, side')} / ${delta(`${M.smtpDuration}_count{phase="connect"}`, 'ip, side')}`, at);
    const ips = new Map<string, string>();
    for (const s of [...sessions]) ips.set(s.metric.ip ?? '', s.metric.side ?? '');
    for (const s of [...q50]) ips.set(s.metric.via_ip ?? '', s.metric.side ?? '');
    const val = (xs: { metric: Record<string, string>; value: number }[], ip: string, label = 'ip') => {
      const v = xs.find((x) => x.metric[label] === ip)?.value;
      return v === undefined || !Number.isFinite(v) ? null : v;
    };
    for (const [ip, side] of ips) knownIps.set(ip, side);
    for (const [ip, side] of [...ips].sort(([a], [b]) => cmp(a, b))) {
      const n = val(sessions, ip) ?? 0;
      latency.push({
        ip,
        side,
        period: p.period,
        p50: val(q50, ip, 'via_ip'),
        p95: val(q95, ip, 'via_ip'),
        p99: val(q99, ip, 'via_ip'),
        smtpSessions: round(n),
        smtpSuccessRatio: n > 0 ? (val(ok, ip) ?? 0) / n : null,
        smtpMeanSeconds: val(mean, ip),
      });
    }
  }
  // Every IP seen in any period gets a row in each (nothing measured: 0 sessions, no figures).
  for (const p of periods) {
    for (const [ip, side] of knownIps) {
      if (!latency.some((l) => l.ip === ip && l.period === p.period))
        latency.push({ ip, side, period: p.period, p50: null, p95: null, p99: null, smtpSessions: 0, smtpSuccessRatio: null, smtpMeanSeconds: null });
    }
  }
  if (!latency.some((l) => l.p50 !== null)) missing.push(`${M.roundtripDuration}: no round trip delivered in the range (probes.roundtrip not configured?)`);

  const failures = (await prom.instant(`${counted(`${M.checks}{result!="success"}`, 'type, result', from, to, L)} > 0`, to))
    .map((s) => ({ type: s.metric.type ?? '', result: s.metric.result ?? '', count: round(s.value) }))
    .filter((f) => f.count > 0)
    .sort((a, b) => b.count - a.count || cmp(a.type, b.type));
  const smtpFailures = (await prom.instant(`${counted(`${M.smtpChecks}{result!="success"}`, 'ip, result', from, to, L)} > 0`, to))
    .map((s) => ({ ip: s.metric.ip ?? '', result: s.metric.result ?? '', count: round(s.value) }))
    .filter((f) => f.count > 0)
    .sort((a, b) => cmp(a.ip, b.ip) || b.count - a.count);

  const rt = await prom.instant(counted(M.roundtrips, 'via_ip, side, result', from, to, L), to);
  const rtBy = new Map<string, { ip: string; side: string; delivered: number; lost: number; failed: number }>();
  for (const s of rt) {
    const ip = s.metric.via_ip ?? '';
    const row = rtBy.get(ip) ?? { ip, side: s.metric.side ?? '', delivered: 0, lost: 0, failed: 0 };
    const r = s.metric.result as 'delivered' | 'lost' | 'failed';
    if (r in row) row[r] += round(s.value);
    rtBy.set(ip, row);
  }
  const verdicts = (await prom.instant(`max by (via_ip, method, result) (${M.roundtripAuth} == 1)`, to))
    .map((s) => ({ ip: s.metric.via_ip ?? '', method: s.metric.method ?? '', result: s.metric.result ?? '' }))
    .sort((a, b) => cmp(a.ip, b.ip) || cmp(a.method, b.method));

  // Spans without samples (failed scrapes on a busy host): counts across them land at their end.
  const [always] = await prom.range(`count(${M.cutoverWindowStart})`, from, to, step);
  const gapMin = Math.max(3 * step, 5);
  let prev = from;
  for (const [t] of [...(always?.values ?? []), [to, 0] as [number, number]]) {
    if (t - prev > gapMin) missing.push(`no samples from ${iso(prev)} to ${iso(t)} (missed scrapes?): what happened in that span is counted at its end`);
    prev = t;
  }

  const alerts = alertLines(await prom.range('ALERTS{alertstate="firing"}', from, to, step), step);

  const resolverSides = (await prom.range(`sum by (side) (${M.dnsAnswerSide}{resolver!~"auth:.*",type=~"A|AAAA"})`, from, to, step)).map((s) => ({
    name: s.metric.side ?? '?',
    points: s.values,
  }));
  const roundtripP95 = (await prom.range(`histogram_quantile(0.95, sum by (via_ip, le) (rate(${M.roundtripDuration}_bucket[${W}])))`, from, to, step)).map(
    (s) => ({ name: s.metric.via_ip ?? '?', points: s.values.filter(([, v]) => Number.isFinite(v)) }),
  );
  const smtpSuccess = (
    await prom.range(`sum by (ip) (rate(${M.smtpChecks}{result="success"}[${W}])) / sum by (ip) (rate(${M.smtpChecks}[${W}]))`, from, to, step)
  ).map((s) => ({ name: s.metric.ip ?? '?', points: s.values.filter(([, v]) => Number.isFinite(v)) }));

  const timeline: { at: number; label: string }[] = [];
  if (window) {
    timeline.push({ at: window.start, label: 'cutover window opens' }, { at: window.end, label: 'cutover window closes' });
  }
  if (loweredAt !== null) timeline.push({ at: loweredAt, label: `TTL lowered from ${before} s to ${lowered} s` });
  if (safeToSwitchAt !== null) timeline.push({ at: safeToSwitchAt, label: 'the old TTL has run out everywhere (safe to switch, by the probes)' });
  if (switchedAt !== null) timeline.push({ at: switchedAt, label: `A record switched to the new IP (TTL then ${atSwitch ?? '?'} s)` });
  if (raisedAt !== null) timeline.push({ at: raisedAt, label: `TTL raised to ${ttlSeries?.values.find(([t]) => t === raisedAt)?.[1] ?? '?'} s` });
  for (const r of resolvers) {
    if (r.switchedAt !== null)
      timeline.push({ at: r.switchedAt, label: `${named(r)} in ${r.region} answers the new IP, ${Math.round(r.lagSeconds ?? 0)} s past the TTL` });
  }
  for (const a of alerts)
    for (const i of a.intervals)
      timeline.push({ at: i.from, label: `alert ${a.alertname}${a.labels ? ` {${a.labels}}` : ''} firing for ${Math.round(i.to - i.from)} s` });
  timeline.sort((a, b) => a.at - b.at);
  const inRange = timeline.filter((e) => e.at >= from - 1 && e.at <= to + 1);

  return {
    prometheus: opts.url,
    from,
    to,
    step,
    generatedAt: (opts.now ?? Date.now)() / 1000,
    mailHost,
    window,
    timeline: inRange,
    ttl: { before, lowered, loweredAt, raisedAt, atSwitch, safeToSwitchAt },
    switchedAt,
    resolvers,
    ttlHonour: { honoured: judged.filter((r) => !r.violation).length, judged: judged.length },
    latency,
    failures,
    smtpFailures,
    roundtrips: [...rtBy.values()].sort((a, b) => cmp(a.ip, b.ip)),
    verdicts,
    alerts,
    charts: { resolverSides, roundtripP95, smtpSuccess },
    missing,
  };
}

/**
 * PromQL for what a counter (or histogram bucket) selection counted between `a` and `b`, summed
 * by `by`: its last sample up to `b` minus its last sample up to `a` (0 where the series did
 * not exist yet). Unlike increase() over the period this needs no two samples inside it (a
 * scrape missed on a busy host, a short period) and does not extrapolate.
 */
function counted(sel: string, by: string, a: number, b: number, lookback: string): string {
  const last = (t: number) => `sum by (${by}) (last_over_time(${sel}[${lookback}] @ ${t.toFixed(3)}))`;
  return `(${last(b)} - (${last(a)} or ${last(b)} * 0))`;
}

/** ALERTS samples → firing intervals per alert (gaps longer than two steps split them). */
function alertLines(series: RangeSeries[], step: number): AlertLine[] {
  const out: AlertLine[] = [];
  for (const s of series) {
    const { alertname = '?', severity = '', ...rest } = s.metric;
    delete rest.__name__;
    delete rest.alertstate;
    const intervals: { from: number; to: number }[] = [];
    for (const [t] of s.values) {
      const last = intervals.at(-1);
      if (last && t - last.to <= 2 * step) last.to = t;
      else intervals.push({ from: t, to: t });
    }
    const labels = Object.entries(rest)
      .filter(([k]) => !['job', 'instance'].includes(k))
      .sort(([a], [b]) => cmp(a, b))
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    out.push({ alertname, severity, labels, intervals, seconds: intervals.reduce((n, i) => n + (i.to - i.from) + step, 0) });
  }
  return out.sort((a, b) => (a.intervals[0]?.from ?? 0) - (b.intervals[0]?.from ?? 0) || cmp(a.alertname, b.alertname));
}

/** `honest (127.0.0.1:5301)`, or the label alone without a name. */
export const named = (r: { resolver: string; name: string }): string => (r.name === r.resolver ? r.resolver : `${r.name} (${r.resolver})`);
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const iso = (s: number) => new Date(s * 1000).toISOString();
