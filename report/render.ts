/**
 * The cutover report as one self-contained HTML file (inline CSS and SVG charts, nothing
 * loaded from anywhere) and as Markdown for a change ticket: the same sections and tables; the
 * Markdown leaves out the charts. Everything read from Prometheus is escaped in the HTML and
 * in the Markdown tables.
 */
import { esc, page, pct, secs } from '../collector/status/html.js';
import { PERIODS, named, type ChartSeries, type ReportData } from './gather.js';

const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#57606a', '#bf3989', '#0a7b83'];
const SIDE_COLORS: Record<string, string> = { new: '#1a7f37', old: '#cf222e', both: '#9a6700', error: '#57606a', none: '#8250df', other: '#bf3989' };

const utc = (s: number | null | undefined) =>
  s === null || s === undefined
    ? '-'
    : new Date(s * 1000)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, 'Z');
const rel = (d: ReportData, s: number) => `+${Math.round(s - d.from)} s`;
const num = (n: number | null | undefined, digits = 0) => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));

/** A line chart of series over [from, to] with marks (vertical lines) at events. */
export function lineChart(
  title: string,
  series: readonly ChartSeries[],
  o: {
    from: number;
    to: number;
    marks: { at: number; label: string }[];
    format: (v: number) => string;
    min?: number;
    max?: number;
    colors?: Record<string, string>;
  },
): string {
  const W = 760;
  const H = 220;
  const L = 56;
  const Rm = 130;
  const T = 24;
  const B = 28;
  const all = series.flatMap((s) => s.points.map(([, v]) => v));
  const lo = o.min ?? Math.min(0, ...all);
  const hi = Math.max(o.max ?? -Infinity, ...all, lo + 1e-9);
  const x = (t: number) => L + ((t - o.from) / Math.max(1e-9, o.to - o.from)) * (W - L - Rm);
  const y = (v: number) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<title>${esc(title)}</title><rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${L}" y="14" font-weight="600" font-size="12">${esc(title)}</text>`);
  for (const f of [0, 0.5, 1]) {
    const v = lo + f * (hi - lo);
    parts.push(
      `<line x1="${L}" x2="${W - Rm}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#d0d7de"/><text x="${L - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${esc(o.format(v))}</text>`,
    );
  }
  parts.push(`<text x="${L}" y="${H - 8}">${esc(utc(o.from))}</text><text x="${W - Rm}" y="${H - 8}" text-anchor="end">${esc(utc(o.to))}</text>`);
  for (const m of o.marks) {
    if (m.at < o.from || m.at > o.to) continue;
    const mx = x(m.at).toFixed(1);
    parts.push(`<line x1="${mx}" x2="${mx}" y1="${T}" y2="${H - B}" stroke="#8c959f" stroke-dasharray="3 3"><title>${esc(m.label)}</title></line>`);
  }
  series.forEach((s, i) => {
    const color = o.colors?.[s.name] ?? COLORS[i % COLORS.length] ?? '#57606a';
    const d = s.points.map(([t, v], j) => `${j === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('');
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"/>`);
    parts.push(
      `<rect x="${W - Rm + 10}" y="${T + i * 16}" width="10" height="10" fill="${color}"/><text x="${W - Rm + 24}" y="${T + i * 16 + 9}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

interface Table {
  head: string[];
  rows: string[][];
}

function htmlTable(t: Table, id?: string): string {
  if (t.rows.length === 0) return '<p class="muted">No data in the range.</p>';
  return `<table${id ? ` id="${id}"` : ''}><thead><tr>${t.head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n')}</tbody></table>`;
}

const mdCell = (c: string) =>
  c
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ')
    .replace(/</g, '&lt;');
function mdTable(t: Table): string {
  if (t.rows.length === 0) return '_No data in the range._';
  return [`| ${t.head.map(mdCell).join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join(
    '\n',
  );
}

function tables(d: ReportData) {
  const timeline: Table = { head: ['time (UTC)', 'since start', 'event'], rows: d.timeline.map((e) => [utc(e.at), rel(d, e.at), e.label]) };
  const resolvers: Table = {
    head: ['region', 'resolver', 'switched to new', 'lag past the TTL', 'honoured the TTL', 'stale past TTL', 'TTL extension', 'answers at the end'],
    rows: d.resolvers.map((r) => [
      r.region,
      named(r),
      r.switchedAt === null ? 'not by the end' : utc(r.switchedAt),
      r.lagSeconds === null ? '-' : `${Math.round(r.lagSeconds)} s`,
      r.violation === null ? 'not judged' : r.violation ? 'no' : 'yes',
      r.staleSeconds === null ? '-' : `${Math.round(r.staleSeconds)} s`,
      r.extensionSeconds === null ? '-' : `${Math.round(r.extensionSeconds)} s`,
      r.lastSide ?? '-',
    ]),
  };
  const latency: Table = {
    head: ['IP', 'side', 'period', 'round trip p50', 'p95', 'p99', 'SMTP sessions', 'SMTP success', 'mean session'],
    rows: [...d.latency]
      .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : PERIODS.indexOf(a.period) - PERIODS.indexOf(b.period)))
      .map((l) => [l.ip, l.side, l.period, secs(l.p50), secs(l.p95), secs(l.p99), String(l.smtpSessions), pct(l.smtpSuccessRatio), secs(l.smtpMeanSeconds)]),
  };
  const failures: Table = { head: ['check', 'class', 'count'], rows: d.failures.map((f) => [f.type, f.result, String(f.count)]) };
  const smtpFailures: Table = { head: ['IP', 'class', 'count'], rows: d.smtpFailures.map((f) => [f.ip, f.result, String(f.count)]) };
  const roundtrips: Table = {
    head: ['via IP', 'side', 'delivered', 'lost', 'failed', "receiver's verdicts at the end"],
    rows: d.roundtrips.map((r) => [
      r.ip,
      r.side,
      String(r.delivered),
      String(r.lost),
      String(r.failed),
      d.verdicts
        .filter((v) => v.ip === r.ip)
        .map((v) => `${v.method} ${v.result}`)
        .join(', ') || '-',
    ]),
  };
  const alerts: Table = {
    head: ['alert', 'severity', 'labels', 'firing', 'for'],
    rows: d.alerts.map((a) => [
      a.alertname,
      a.severity,
      a.labels,
      a.intervals.map((i) => `${utc(i.from)} – ${utc(i.to)}`).join('; '),
      `${Math.round(a.seconds)} s`,
    ]),
  };
  return { timeline, resolvers, latency, failures, smtpFailures, roundtrips, alerts };
}

function lowering(d: ReportData): string {
  return d.ttl.loweredAt === null
    ? 'The TTL lowering is not in the range'
    : `TTL before: ${num(d.ttl.before)} s; lowered to ${num(d.ttl.lowered)} s at ${utc(d.ttl.loweredAt)}`;
}

function summary(d: ReportData): string[] {
  const h = d.ttlHonour;
  const lines = [
    `Range ${utc(d.from)} – ${utc(d.to)}${d.window ? `; cutover window ${utc(d.window.start)} – ${utc(d.window.end)}` : ''}.`,
    h.judged === 0
      ? 'TTL honoured: no resolver was judged by the ttl analysis.'
      : `TTL honoured by ${pct(h.honoured / h.judged)} of the resolvers (${h.honoured} of ${h.judged}); violators: ${
          d.resolvers
            .filter((r) => r.violation)
            .map((r) => `${named(r)} in ${r.region}`)
            .join(', ') || 'none'
        }.`,
  ];
  const during = d.latency.filter((l) => l.period === 'during' && l.p50 !== null);
  if (during.length > 0)
    lines.push(`Round trip during the window: ${during.map((l) => `${l.ip} (${l.side}) p50 ${secs(l.p50)}, p95 ${secs(l.p95)}`).join('; ')}.`);
  const fired = d.alerts.length;
  lines.push(fired === 0 ? 'No alert fired.' : `${fired} alert series fired: ${[...new Set(d.alerts.map((a) => a.alertname))].join(', ')}.`);
  return lines;
}

export function renderReportHtml(d: ReportData): string {
  const t = tables(d);
  const marks = d.timeline.filter((e) => /window|switched|lowered|raised/.test(e.label));
  const chartOpts = { from: d.from, to: d.to, marks };
  const title = `Cutover report${d.mailHost ? ` for ${d.mailHost}` : ''}`;
  const body = `<h1>${esc(title)}</h1>
<p class="muted">From ${esc(d.prometheus)}, generated ${esc(utc(d.generatedAt))}, step ${d.step} s. Dashed lines in the charts: window, TTL and switch events.</p>
<section id="summary"><h2>Summary</h2><ul>${summary(d)
    .map((l) => `<li>${esc(l)}</li>`)
    .join('')}</ul>
${d.missing.length > 0 ? `<p>Not in the data:</p><ul class="missing">${d.missing.map((m) => `<li>${esc(m)}</li>`).join('')}</ul>` : ''}</section>
<section id="timeline"><h2>Timeline</h2>${htmlTable(t.timeline)}</section>
<section id="ttl"><h2>The TTL answer</h2>
<p>${esc(lowering(d))}; the A record switched at ${esc(utc(d.switchedAt))} with TTL ${esc(num(d.ttl.atSwitch))} s. A resolver's lag is how long after the switch plus that TTL it first answered the new IP (0: in time; precision: the probe interval).</p>
${lineChart('Resolvers by the side they answer', d.charts.resolverSides, { ...chartOpts, format: (v) => v.toFixed(0), colors: SIDE_COLORS })}
${htmlTable(t.resolvers, 'resolvers')}</section>
<section id="delivery"><h2>Delivery per IP</h2>
${lineChart('Round trip p95 per IP (s)', d.charts.roundtripP95, { ...chartOpts, format: (v) => v.toFixed(1) })}
${lineChart('SMTP success ratio per IP', d.charts.smtpSuccess, { ...chartOpts, format: (v) => `${Math.round(v * 100)}%`, min: 0, max: 1 })}
${htmlTable(t.latency, 'latency')}
<h3>Failures by class</h3>${htmlTable(t.failures, 'failures')}
<h3>SMTP failures per IP</h3>${htmlTable(t.smtpFailures, 'smtp-failures')}
<h3>Round trips</h3>${htmlTable(t.roundtrips, 'roundtrips')}</section>
<section id="alerts"><h2>Alerts that fired</h2>${htmlTable(t.alerts, 'alert-list')}</section>`;
  return page(title, body);
}

export function renderReportMarkdown(d: ReportData): string {
  const t = tables(d);
  return `# Cutover report${d.mailHost ? ` for ${d.mailHost}` : ''}

From ${d.prometheus}, generated ${utc(d.generatedAt)}. The HTML report beside this file has the charts.

## Summary

${summary(d)
  .map((l) => `- ${l}`)
  .join('\n')}
${d.missing.length > 0 ? `\nNot in the data:\n\n${d.missing.map((m) => `- ${m}`).join('\n')}\n` : ''}
## Timeline

${mdTable(t.timeline)}

## The TTL answer

${lowering(d)}; the A record switched at ${utc(d.switchedAt)} with TTL ${num(d.ttl.atSwitch)} s.

${mdTable(t.resolvers)}

## Delivery per IP

${mdTable(t.latency)}

### Failures by class

${mdTable(t.failures)}

### SMTP failures per IP

${mdTable(t.smtpFailures)}

### Round trips

${mdTable(t.roundtrips)}

## Alerts that fired

${mdTable(t.alerts)}
`;
}
