/**
 * The status page (`GET /`): one HTML document from a {@link StatusV1} snapshot, for the people
 * around the operator during the window. Plain HTML and inline CSS, no JavaScript, reloaded by
 * a meta refresh; every string that came from a probe is escaped. Sections and rows carry ids
 * and data attributes so the page can be read by a script (and is, by the tests) as well.
 */
import { clock, esc, page, pct, secs, utc } from './html.js';
import type { Condition, Decision, StatusV1, Verdict } from './model.js';

const VERDICT_TEXT: Record<Verdict, string> = { pass: 'pass', warn: 'warn', fail: 'FAIL', unknown: 'unknown' };
const verdict = (v: Verdict) => `<span class="${v}">${VERDICT_TEXT[v]}</span>`;
const ago = (now: number, at: number | null) => (at === null ? '-' : `${clock((now - at) / 1000)} ago`);
/** An id attribute from a probe's value: letters, digits, dash and underscore only. */
const idOf = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '-');
/** `honest (127.0.0.1:5301)`, or the label alone when the plan gives no name. */
const named = (r: { resolver: string; name: string }) => (r.name === r.resolver ? r.resolver : `${r.name} (${r.resolver})`);
const list = (xs: readonly string[]) => (xs.length === 0 ? '<span class="muted">none</span>' : xs.map(esc).join(', '));

function decision(id: string, title: string, d: Decision): string {
  const row = (c: Condition) =>
    `<li data-met="${c.met}"><span class="${c.met ? 'yes' : 'no'}">${c.met ? '✓' : '✗'}</span> ${esc(c.title)}: ${esc(c.detail)}</li>`;
  return `<section id="${id}" data-safe="${d.safe}"><h2>${esc(title)}: <span class="${d.safe ? 'yes' : 'no'}">${d.safe ? 'yes' : 'not yet'}</span></h2>
${d.safe ? '<p>Every condition is met.</p>' : `<p>Still open:</p><ul class="open">${d.open.map(row).join('')}</ul>`}
<details><summary>All conditions</summary><ul>${d.conditions.map(row).join('')}</ul></details></section>`;
}

export function renderStatusPage(s: StatusV1, opts: { refreshSeconds?: number } = {}): string {
  const now = s.generatedAt;
  const w = s.window;
  const countdown =
    w.state === 'before' ? `opens in ${clock(w.opensInSeconds ?? 0)}` : w.state === 'open' ? `closes in ${clock(w.closesInSeconds ?? 0)}` : 'closed';
  const a = s.authoritative;
  const parts: string[] = [];

  parts.push(`<h1>Cutover of ${esc(s.mailHost)}</h1>
<p class="muted">Status at ${esc(utc(now))} from the collector's own state; this page reloads itself${opts.refreshSeconds ? ` every ${Math.round(opts.refreshSeconds)} s` : ''}. JSON: <a href="v1/status">/v1/status</a>.</p>
<div class="banner">
<div class="card"><span class="muted">Phase</span><b id="phase" data-phase="${s.phase}">${esc(s.phaseText)}</b></div>
<div class="card"><span class="muted">Window ${esc(utc(w.start))} – ${esc(utc(w.end))}</span><b id="window" data-state="${w.state}">${esc(countdown)}</b></div>
<div class="card"><span class="muted">Authoritative answer</span><b id="authoritative" data-side="${esc(a.side ?? 'none')}">${a.side === null ? 'no answer yet' : `${esc(a.side)} IP, TTL ${a.ttl ?? '-'} s`}</b></div>
<div class="card"><span class="muted">Safe to switch / to turn the old server off</span><b><span class="${s.safeToSwitch.safe ? 'yes' : 'no'}">${s.safeToSwitch.safe ? 'yes' : 'not yet'}</span> / <span class="${s.safeToTurnOldOff.safe ? 'yes' : 'no'}">${s.safeToTurnOldOff.safe ? 'yes' : 'not yet'}</span></b></div>
</div>`);

  parts.push(decision('safe-to-switch', 'Safe to switch', s.safeToSwitch));
  parts.push(decision('safe-to-turn-off', 'Safe to turn the old server off', s.safeToTurnOldOff));

  parts.push(`<section id="dns"><h2>DNS</h2>
<table><caption>What the authoritative servers answer${a.safeToSwitchAt !== null ? `; lowered TTL run out at ${esc(utc(a.safeToSwitchAt))}` : ''}</caption>
<thead><tr><th scope="col">server</th><th scope="col">answer</th><th scope="col">side</th><th scope="col">TTL</th><th scope="col">asked</th></tr></thead><tbody>
${a.servers.map((r) => `<tr data-server="${esc(r.server)}"><td>${esc(r.server)}</td><td>${list(r.answers)}</td><td>${esc(r.side)}</td><td class="n">${r.ttl ?? '-'}</td><td>${ago(now, r.at)}</td></tr>`).join('\n')}
</tbody></table>`);
  for (const r of s.resolvers) {
    const honour = r.ttlHonour.ratio === null ? 'not judged yet' : `${pct(r.ttlHonour.ratio)} (${r.ttlHonour.honoured} of ${r.ttlHonour.judged})`;
    parts.push(`<h3 id="resolvers-${idOf(r.region)}">Resolvers in ${esc(r.region)}: ${r.onNew.length} on new, ${r.onOld.length + r.onBoth.length} on old, ${r.failing.length} failing</h3>
<p>TTL honoured: <b class="honour">${esc(honour)}</b>. Violators: ${r.violators.length === 0 ? '<span class="muted">none</span>' : r.violators.map((v) => `${esc(named(v))} (${Math.round(v.staleSeconds)} s past the TTL)`).join(', ')}.</p>
<table data-region="${esc(r.region)}"><thead><tr><th scope="col">resolver</th><th scope="col">answers</th><th scope="col">side</th><th scope="col">TTL</th><th scope="col">honours TTL</th><th scope="col">asked</th><th scope="col">error</th></tr></thead><tbody>
${r.resolvers
  .map(
    (x) =>
      `<tr data-resolver="${esc(x.resolver)}" data-side="${x.side}"><td>${esc(named(x))}</td><td>${list(x.answers)}</td><td class="${x.side === 'new' ? 'pass' : x.side === 'old' || x.side === 'both' ? 'warn' : 'fail'}">${esc(x.side)}</td><td class="n">${x.ttl ?? '-'}</td><td>${x.honoursTtl === null ? '<span class="muted">-</span>' : x.honoursTtl ? '<span class="yes">yes</span>' : `<span class="no">no, ${Math.round(x.staleSeconds)} s stale</span>`}</td><td>${ago(now, x.at)}</td><td>${x.errorClass ? `${esc(x.errorClass)}: ${esc(x.message ?? '')}` : ''}</td></tr>`,
  )
  .join('\n')}
</tbody></table>`);
  }
  parts.push('</section>');

  parts.push(`<section id="delivery"><h2>Delivery</h2>
<table id="sessions"><thead><tr><th scope="col">server</th><th scope="col">IP</th><th scope="col">side</th><th scope="col">region</th><th scope="col">success</th><th scope="col">p50</th><th scope="col">p95</th><th scope="col">sessions</th><th scope="col">last error</th></tr></thead><tbody>
${s.delivery
  .map(
    (d) =>
      `<tr data-ip="${esc(d.ip)}" data-region="${esc(d.region)}"><td>${esc(d.name)}</td><td>${esc(d.ip)}</td><td>${d.side}</td><td>${esc(d.region)}</td><td class="n ${(d.successRatio ?? 0) >= 0.9 ? 'pass' : 'fail'}">${pct(d.successRatio)}</td><td class="n">${secs(d.p50Seconds)}</td><td class="n">${secs(d.p95Seconds)}</td><td class="n">${d.sessions}</td><td>${d.lastErrorClass ? `<b>${esc(d.lastErrorClass)}</b> ${esc(d.lastError ?? '')} (${ago(now, d.lastErrorAt)})` : ''}</td></tr>`,
  )
  .join('\n')}
</tbody></table>`);
  if (s.roundtrips.length > 0) {
    parts.push(`<h3>Round trips</h3>
<table id="roundtrips"><thead><tr><th scope="col">via</th><th scope="col">IP</th><th scope="col">region</th><th scope="col">delivered</th><th scope="col">lost</th><th scope="col">failed</th><th scope="col">p50</th><th scope="col">p95</th><th scope="col">receiver's verdicts</th></tr></thead><tbody>
${s.roundtrips
  .map(
    (r) =>
      `<tr data-ip="${esc(r.ip)}" data-region="${esc(r.region)}"><td>${esc(r.name)}</td><td>${esc(r.ip)}</td><td>${esc(r.region)}</td><td class="n">${r.delivered}</td><td class="n">${r.lost}</td><td class="n">${r.failed}</td><td class="n">${secs(r.p50Seconds)}</td><td class="n">${secs(r.p95Seconds)}</td><td>${
        r.verdicts
          ? Object.entries(r.verdicts)
              .map(([k, v]) => `${esc(k)} ${esc(v)}`)
              .join(', ')
          : '-'
      }</td></tr>`,
  )
  .join('\n')}
</tbody></table>`);
  }
  parts.push('</section>');

  parts.push(`<section id="readiness"><h2>Readiness per server</h2><div class="grid">`);
  for (const srv of s.servers) {
    parts.push(`<div><h3 id="server-${idOf(srv.ip)}">${esc(srv.name)} (${esc(srv.ip)}, ${srv.side}): ${verdict(srv.verdict)}</h3>
<table data-server-ip="${esc(srv.ip)}"><thead><tr><th scope="col">check</th><th scope="col">verdict</th><th scope="col">evidence</th></tr></thead><tbody>
${srv.checks.map((c) => `<tr data-check="${c.check}" data-verdict="${c.verdict}"><td>${esc(c.title)}</td><td>${verdict(c.verdict)}</td><td>${esc(c.evidence)}${c.at === null ? '' : ` <span class="muted">(${ago(now, c.at)})</span>`}</td></tr>`).join('\n')}
</tbody></table></div>`);
  }
  parts.push('</div></section>');

  parts.push(`<section id="probes"><h2>Probes</h2>
<table><thead><tr><th scope="col">probe</th><th scope="col">region</th><th scope="col">version</th><th scope="col">last push</th><th scope="col">spool</th><th scope="col">dropped batches</th></tr></thead><tbody>
${s.probes
  .map(
    (p) =>
      `<tr data-probe="${esc(p.id)}"><td>${esc(p.id)}</td><td>${esc(p.region)}</td><td>${esc(p.version)}</td><td>${clock(p.secondsSincePush)} ago</td><td class="n">${p.spoolBatches === null ? '-' : `${p.spoolBatches} batches, ${p.spoolBytes ?? 0} bytes`}</td><td class="n">${p.spoolDropped ?? '-'}</td></tr>`,
  )
  .join('\n')}
</tbody></table></section>`);

  return page(`${s.phaseText} — ${s.mailHost}`, parts.join('\n'), opts);
}
