/**
 * Shared pieces of the dashboards: the datasource, variables, query and panel helpers, and the
 * names of the recording rules (deploy/prometheus/rules/mailprobe-recording.yml) dashboards read.
 *
 * Metric names come from the catalogue (protocol/metrics.ts) through {@link m}; PromQL that reads
 * raw series first drops the HA pair's duplicate with {@link dedup}.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { METRICS, type MetricKey } from '../protocol/metrics.js';

/** Panels use the datasource chosen in the `datasource` variable (default: the provisioned one). */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** The uid of the datasource grafana/provisioning/datasources/prometheus.yml creates. */
export const PROVISIONED_DATASOURCE_UID = 'mailprobe-prometheus';

/** The catalogue name of a metric. */
export const m = (key: MetricKey): string => METRICS[key].name;

/** Drops the copy of each series that the second collector of the HA pair exports. */
export const dedup = (expr: string): string => `max without (instance) (${expr})`;

/** Recording rules the dashboards read (deploy/prometheus/rules/mailprobe-recording.yml). */
export const RECORDED = {
  resolversBySide: 'region_side:mailprobe_dns_answer_side:count',
  resolversNewRatio: 'region:mailprobe_dns_answer_side:ratio_new',
  authoritativeSide: 'side:mailprobe_dns_answer_side:authoritative',
  ttlHonouredRatio: 'region:mailprobe_dns_ttl_violation:ratio_honoured',
  ttlStates: 'state:mailprobe_dns_ttl_tested:count',
  ttlHonouredFleet: 'fleet:mailprobe_dns_ttl_tested:ratio_honoured',
  smtpSessionQuantiles: 'ip:mailprobe_smtp_session_duration_seconds:quantile_rate5m',
  smtpSuccessRatio: 'region_ip:mailprobe_smtp_checks_total:ratio_success_rate5m',
  smtpFailureRate: 'region_ip_result:mailprobe_smtp_checks_total:rate5m',
  smtpQuantiles: 'region_ip_phase:mailprobe_smtp_duration_seconds:quantile_rate5m',
  smtpSessionMean: 'region_ip:mailprobe_smtp_duration_seconds:session_mean_rate5m',
  servedDown: 'region_ip:mailprobe_smtp_up:served_down',
  roundtripQuantiles: 'via_ip:mailprobe_roundtrip_duration_seconds:quantile_rate15m',
  roundtripLostRatio: 'via_ip:mailprobe_roundtrip_total:ratio_lost_rate15m',
  oldIpQuiet: 'ip:mailprobe_mta_inbound_quiet:min',
  safeToDecommission: 'fleet:mailprobe_safe_to_decommission:and_mta_quiet',
} as const;

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource')
    .label('Prometheus')
    .type('prometheus')
    .current({ selected: true, text: 'mailprobe', value: PROVISIONED_DATASOURCE_UID });
}

/** A multi-value variable over the values of `label` of `metric`, "All" matching everything. */
export function labelVariable(name: string, label: string, metric: string, title: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(title)
    .datasource(DATASOURCE)
    .query(`label_values(${metric}, ${label})`)
    .definition(`label_values(${metric}, ${label})`)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.NaturalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ selected: true, text: 'All', value: '$__all' });
}

export const regionVariable = () => labelVariable('region', 'region', m('probeLastPush'), 'Region');
export const probeVariable = () => labelVariable('probe', 'probe', m('probeLastPush'), 'Probe');
export const resolverVariable = () => labelVariable('resolver', 'resolver', m('dnsAnswerSide'), 'Resolver');

/** Links in every dashboard's header to the other mailprobe dashboards, keeping time and variables. */
export function dashboardLinks(): dashboard.DashboardLinkBuilder {
  return new dashboard.DashboardLinkBuilder('mailprobe dashboards')
    .type(dashboard.DashboardLinkType.Dashboards)
    .tags(['mailprobe'])
    .asDropdown(false)
    .includeVars(true)
    .keepTime(true);
}

/**
 * Annotations on every dashboard: the cutover window of the plan (a region while it is open) and
 * the A-record switch (the step at which the authoritative servers first serve the new IP).
 */
export const ANNOTATIONS: readonly { name: string; color: string; title: string; expr: string }[] = [
  { name: 'Cutover window', color: 'orange', title: 'cutover window', expr: `max(${METRICS.cutoverWindowActive.name}) == 1` },
  {
    name: 'A-record switch',
    color: 'red',
    title: 'A record switched to the new IP',
    expr: `max(${RECORDED.authoritativeSide}{side=~"new|both"})\nunless max(${RECORDED.authoritativeSide}{side=~"new|both"} offset 1m)`,
  },
];

/**
 * A mailprobe dashboard with what every one of them has: the tag, UTC, the cutover annotations,
 * the links to the others, and the data source and region variables first (its own variables
 * and panels follow).
 */
export function mailprobeDashboard(o: { title: string; uid: string; description: string; refresh?: string; from?: string }): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(o.title)
    .uid(o.uid)
    .tags(['mailprobe'])
    .description(o.description)
    .refresh(o.refresh ?? '30s')
    .time({ from: o.from ?? 'now-6h', to: 'now' })
    .timezone('utc')
    .editable()
    .annotations(cutoverAnnotations())
    .link(dashboardLinks())
    .withVariable(datasourceVariable())
    .withVariable(regionVariable());
}

export function cutoverAnnotations(): dashboard.AnnotationQueryBuilder[] {
  return ANNOTATIONS.map((a) =>
    new dashboard.AnnotationQueryBuilder().name(a.name).datasource(DATASOURCE).enable(true).iconColor(a.color).expr(a.expr).step('1m').titleFormat(a.title),
  );
}
export const ipVariable = () => labelVariable('ip', 'ip', m('smtpUp'), 'Destination IP');

export interface QueryOpts {
  legend?: string;
  instant?: boolean;
  format?: prometheus.PromQueryFormat;
}

/** A PromQL target; refIds are assigned per panel in order (A, B, …). */
export function q(expr: string, opts: QueryOpts = {}): prometheus.DataqueryBuilder {
  let b = new prometheus.DataqueryBuilder().datasource(DATASOURCE).expr(expr.trim());
  if (opts.legend !== undefined) b = b.legendFormat(opts.legend);
  if (opts.instant) b = b.instant();
  else b = b.range();
  if (opts.format) b = b.format(opts.format);
  return b;
}

/** Anything with targets that takes a refId and a datasource (every panel builder). */
interface TargetPanel<T> {
  withTarget(target: prometheus.DataqueryBuilder): T;
  datasource(ds: common.DataSourceRef): T;
}

/** Adds targets with refIds A, B, … and the datasource. */
export function targets<T extends TargetPanel<T>>(panel: T, ...qs: prometheus.DataqueryBuilder[]): T {
  let p = panel.datasource(DATASOURCE);
  qs.forEach((t, i) => {
    p = p.withTarget(t.refId(String.fromCharCode(65 + i)));
  });
  return p;
}

export function thresholds(steps: { value: number | null; color: string }[]): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps);
}

/** Value mappings for 0/1 gauges: 1 → okText (green), 0 → badText (red). */
export function okMappings(okText: string, badText: string): dashboard.ValueMapping[] {
  return [
    {
      type: dashboard.MappingType.ValueToText,
      options: { '1': { text: okText, color: 'green', index: 0 }, '0': { text: badText, color: 'red', index: 1 } },
    },
  ];
}

export function valueMappings(map: Record<string, { text: string; color: string }>): dashboard.ValueMapping[] {
  const options: Record<string, { text: string; color: string; index: number }> = {};
  Object.entries(map).forEach(([k, v], index) => {
    options[k] = { ...v, index };
  });
  return [{ type: dashboard.MappingType.ValueToText, options }];
}

export function lastValue(): common.ReduceDataOptionsBuilder {
  return new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);
}

export function stacked(): common.StackingConfigBuilder {
  return new common.StackingConfigBuilder().mode(common.StackingMode.Normal);
}

/** Gives every panel of a dashboard a stable id in layout order (Grafana needs unique ids). */
export function numberPanels(d: dashboard.Dashboard): dashboard.Dashboard {
  let id = 1;
  for (const p of d.panels ?? []) {
    p.id = id++;
    if (p.type === 'row') for (const inner of (p as dashboard.RowPanel).panels ?? []) inner.id = id++;
  }
  return d;
}
