/**
 * The few pieces of HTML the status page and the cutover report share: escaping (everything
 * that came from a probe or from Prometheus goes through `esc`), the page shell with its inline
 * stylesheet (no external assets: both must work on an isolated network, and the report is one
 * file attached to a ticket) and number formats.
 */

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and quoted attribute values. */
export function esc(v: unknown): string {
  const s = String(v ?? '');
  return NEEDS_ESC.test(s) ? s.replace(/[&<>"']/g, (c) => ESC[c] ?? c) : s;
}
const NEEDS_ESC = /[&<>"']/;

export const CSS = `
:root{color-scheme:light;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--unk:#57606a;--line:#d0d7de;--bg2:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:4px 0 10px;min-width:40%}th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600}caption{text-align:left;color:var(--unk);padding:2px 0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass,.yes{color:var(--ok);font-weight:600}.warn{color:var(--warn);font-weight:600}.fail,.no{color:var(--bad);font-weight:600}.unknown{color:var(--unk);font-weight:600}
.banner{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0}.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;background:var(--bg2);min-width:220px}
.card b{display:block;font-size:16px}.muted{color:var(--unk)}ul{margin:4px 0 8px;padding-left:20px}code{font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:0 24px}
svg{max-width:100%;height:auto;font:11px system-ui,sans-serif}
`;

/** A complete page: `<head>` with the inline stylesheet, optional meta refresh, then `body`. */
export function page(title: string, body: string, opts: { refreshSeconds?: number } = {}): string {
  const refresh = opts.refreshSeconds ? `<meta http-equiv="refresh" content="${Math.max(1, Math.round(opts.refreshSeconds))}">\n` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh}<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Seconds as `850 ms`, `2.41 s`, or `-`. */
export function secs(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '-';
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

/** A ratio as `97%`, or `-`. */
export function pct(r: number | null | undefined): string {
  return r === null || r === undefined || !Number.isFinite(r) ? '-' : `${Math.round(r * 1000) / 10}%`;
}

/** A countdown as `1h 02m 05s`. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m ${String(r).padStart(2, '0')}s` : m > 0 ? `${m}m ${String(r).padStart(2, '0')}s` : `${r}s`;
}

/** Unix ms as `2026-12-04 20:00:00Z`. */
export function utc(ms: number | null | undefined): string {
  return ms === null || ms === undefined
    ? '-'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, 'Z');
}
