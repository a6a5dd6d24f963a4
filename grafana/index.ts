/**
 * The dashboards as code: each is built with @grafana/grafana-foundation-sdk and written as JSON to
 * grafana/dashboards/ by `npm run dashboards` (grafana/build.ts); a test keeps the committed JSON
 * up to date and evaluates every panel query against a real Prometheus.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { cutoverDashboard } from './cutover.js';
import { deliveryDashboard } from './delivery.js';
import { OPTIONAL_ROWS, fleetDashboard } from './fleet.js';
import { resolversDashboard } from './resolvers.js';
import { roundtripDashboard } from './roundtrip.js';

/** Dashboard builders by the file name of their JSON under grafana/dashboards/. */
export const DASHBOARDS: Readonly<Record<string, () => dashboard.Dashboard>> = {
  'cutover.json': cutoverDashboard,
  'delivery.json': deliveryDashboard,
  'roundtrip.json': roundtripDashboard,
  'resolvers.json': resolversDashboard,
  'fleet.json': fleetDashboard,
};

/** The JSON text of every dashboard by file name, as committed. */
export function renderDashboards(): Map<string, string> {
  return new Map(Object.entries(DASHBOARDS).map(([file, build]) => [file, `${JSON.stringify(build(), null, 2)}\n`]));
}

/** One PromQL query of one panel. */
export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  instant: boolean;
  format: string;
  /** Set when the panel shows data only in some setups (what it needs); see OPTIONAL_ROWS. */
  optional?: string;
}

interface PromTarget {
  refId?: string;
  expr?: string;
  instant?: boolean;
  format?: string;
}

/** Every panel query of every dashboard (Grafana variables not substituted). */
export function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const [file, build] of Object.entries(DASHBOARDS)) {
    const d = build();
    let row = '';
    const panels: [string, dashboard.Panel][] = [];
    for (const p of d.panels ?? []) {
      if (p.type === 'row') {
        const r = p as dashboard.RowPanel;
        row = r.title ?? '';
        for (const inner of r.panels) panels.push([row, inner]);
      } else panels.push([row, p as dashboard.Panel]);
    }
    for (const [rowTitle, p] of panels) {
      const optional = OPTIONAL_ROWS[rowTitle];
      for (const t of (p.targets ?? []) as PromTarget[]) {
        if (t.expr === undefined) continue;
        out.push({
          dashboard: file,
          panel: p.title ?? '',
          refId: t.refId ?? '',
          expr: t.expr,
          instant: t.instant === true,
          format: t.format ?? 'time_series',
          ...(optional === undefined ? {} : { optional }),
        });
      }
    }
  }
  return out;
}

/** Annotation queries (PromQL) of every dashboard. */
export function annotationQueries(): { dashboard: string; name: string; expr: string }[] {
  return Object.entries(DASHBOARDS).flatMap(([file, build]) =>
    (build().annotations?.list ?? []).filter((a) => typeof a.expr === 'string').map((a) => ({ dashboard: file, name: a.name, expr: a.expr as string })),
  );
}

/** Variable queries (label_values(…)) of every dashboard. */
export function variableQueries(): { dashboard: string; name: string; query: string }[] {
  return Object.entries(DASHBOARDS).flatMap(([file, build]) =>
    (build().templating?.list ?? [])
      .filter((v) => v.type === 'query' && typeof v.query === 'string')
      .map((v) => ({ dashboard: file, name: v.name, query: v.query as string })),
  );
}

/**
 * Values for the dashboards' variables as a dashboard with "All" selected sends them, for
 * evaluating panel queries outside Grafana (tests, the lab). `$__rate_interval` is 1m: enough for a
 * Prometheus scraping every few seconds.
 */
export const ALL_VARIABLES: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
  region: '.*',
  probe: '.*',
  resolver: '.*',
  ip: '.*',
  via_ip: '.*',
  phase: 'rcpt',
};

/** Replaces `$name` and `${name}` with `vars`; throws on a variable it has no value for. */
export function substituteVariables(expr: string, vars: Readonly<Record<string, string>> = ALL_VARIABLES): string {
  return expr.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, a: string | undefined, b: string | undefined) => {
    const v = vars[a ?? b ?? ''];
    if (v === undefined) throw new Error(`unknown Grafana variable ${whole} in ${expr}`);
    return v;
  });
}
