/**
 * `mailprobe report --prometheus URL --from T --to T [--out DIR]`: the cutover report (HTML with
 * inline SVG charts, and Markdown) from Prometheus's HTTP API alone.
 */
import { parseArgs } from 'node:util';
import { ReportError } from '../report/prometheus.js';
import { writeReport } from '../report/write.js';

const HELP = `usage: mailprobe report --prometheus URL --from TIME --to TIME [--out DIR]

Writes the cutover report as DIR/cutover-report.html (self-contained: inline CSS and SVG
charts) and DIR/cutover-report.md (for a change ticket): the timeline (TTL lowered, A record
switched, each resolver's switch and its lag past the TTL), the TTL answer per resolver,
delivery per IP before, during and after the window (round trip p50/p95/p99, SMTP success),
failures by class, round trips and the receiver's verdicts, and the alerts that fired.

Only Prometheus's HTTP query API is read, so Mimir, Thanos Query or VictoriaMetrics holding
the collector's remote write work as well.

  --prometheus URL   base URL of the query API, e.g. http://prometheus:9090
                     (Mimir: http://mimir/prometheus; VictoriaMetrics: http://vm:8428)
  --from TIME        start: RFC 3339 (2026-12-04T19:00:00Z), Unix seconds, or now-2h
  --to TIME          end, as --from (default now)
  --out DIR          where to write (default .)
  --header NAME=VALUE  an extra request header (repeatable), e.g. X-Scope-OrgID=tenant
`;

/** RFC 3339, Unix seconds, `now` or `now-<n><s|m|h|d>` → Unix seconds. */
export function parseTime(text: string, now = Date.now()): number {
  const rel = /^now(?:-(\d+)([smhd]))?$/.exec(text.trim());
  if (rel) return (now - (rel[1] ? Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's'] : 0)) / 1000;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}T/.test(text) && !Number.isNaN(ms)) return ms / 1000;
  throw new ReportError(`"${text}" is not a time: use RFC 3339 (2026-12-04T19:00:00Z), Unix seconds or now-2h`);
}

export async function runReport(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      prometheus: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      header: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.prometheus || !values.from) {
    process.stderr.write(`mailprobe report: --prometheus and --from are required\n\n${HELP}`);
    return 2;
  }
  try {
    const headers: Record<string, string> = {};
    for (const h of values.header ?? []) {
      const at = h.indexOf('=');
      if (at < 1) throw new ReportError(`--header ${h}: must be NAME=VALUE`);
      headers[h.slice(0, at)] = h.slice(at + 1);
    }
    const r = await writeReport({
      prometheus: values.prometheus,
      from: parseTime(values.from),
      to: parseTime(values.to ?? 'now'),
      outDir: values.out ?? '.',
      headers,
    });
    process.stdout.write(`mailprobe report: ${r.html}\nmailprobe report: ${r.markdown}\n`);
    for (const m of r.data.missing) process.stderr.write(`mailprobe report: not in the data: ${m}\n`);
    return 0;
  } catch (e) {
    if (e instanceof ReportError) {
      process.stderr.write(`mailprobe report: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
