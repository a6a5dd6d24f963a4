/**
 * Resolvers: what each resolver in each region answers for the mail host, with which TTL, and which
 * of them keep the old answer longer than the TTL allows.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { ANSWER_SIDES } from '../protocol/results.js';
import { dedup, m, numberPanels, probeVariable, q, RECORDED, resolverVariable, stacked, targets, valueMappings, mailprobeDashboard } from './common.js';

/** Raw per-resolver series: by region, probe and resolver. */
const sel = 'region=~"$region", probe=~"$probe", resolver=~"$resolver"';

const SIDE_COLORS: Record<string, string> = { old: 'blue', new: 'green', both: 'purple', other: 'orange', none: 'yellow', error: 'red' };

/** One number per resolver encoding its answered side (old=1, new=2, …) for a state timeline. */
function sideCode(): string {
  return ANSWER_SIDES.map(
    (side, i) => `${i + 1} * max by (region, probe, resolver, resolver_name) (${dedup(`${m('dnsAnswerSide')}{${sel}, type="A", side="${side}"}`)})`,
  ).join('\nor ');
}

export function resolversDashboard(): dashboard.Dashboard {
  const sides = targets(
    new statetimeline.PanelBuilder()
      .title('Answer side per resolver')
      .unit('none')
      .description('Which IP each resolver hands out for the mail host (A record) over time.')
      .span(24)
      .height(10)
      .showValue(common.VisibilityMode.Never)
      .mappings(valueMappings(Object.fromEntries(ANSWER_SIDES.map((s, i) => [String(i + 1), { text: s, color: SIDE_COLORS[s] ?? 'gray' }])))),
    q(sideCode(), { legend: '{{region}} {{resolver_name}}' }),
  );

  const bySide = targets(
    new timeseries.PanelBuilder().title('Resolvers per side').span(12).height(8).unit('short').stacking(stacked()),
    q(`sum by (side) (${RECORDED.resolversBySide}{region=~"$region"})`, { legend: '{{side}}' }),
  );

  const honour = targets(
    new timeseries.PanelBuilder().title('TTL honoured').span(12).height(8).unit('percentunit').min(0).max(1),
    q(`${RECORDED.ttlHonouredRatio}{region=~"$region"}`, { legend: '{{region}}' }),
  );

  const ttl = targets(
    new timeseries.PanelBuilder().title('Remaining TTL per resolver').span(12).height(8).unit('s'),
    q(`max by (region, resolver, resolver_name) (${dedup(`${m('dnsTtl')}{${sel}, type="A"}`)})`, { legend: '{{region}} {{resolver_name}}' }),
  );

  const extension = targets(
    new timeseries.PanelBuilder()
      .title('TTL extension per resolver')
      .description('How far the TTL a resolver reported exceeded the authoritative TTL.')
      .span(12)
      .height(8)
      .unit('s'),
    q(`max by (region, resolver, resolver_name) (${dedup(`${m('dnsTtlExtension')}{${sel}}`)})`, { legend: '{{region}} {{resolver_name}}' }),
  );

  const violators = targets(
    new table.PanelBuilder()
      .title('Resolvers ignoring the TTL')
      .description('Resolvers that returned the pre-change answer after the old TTL had run out, with how long past it (stale seconds).')
      .span(12)
      .height(8)
      .unit('s'),
    q(
      `${dedup(`${m('dnsResolverStale')}{${sel}}`)}
and on (region, probe, resolver, name) ${dedup(m('dnsTtlViolation'))} == 1`,
      { instant: true, format: prometheus.PromQueryFormat.Table },
    ),
  );

  const stale = targets(
    new timeseries.PanelBuilder().title('Stale seconds per resolver').span(12).height(8).unit('s'),
    q(`max by (region, resolver, resolver_name) (${dedup(`${m('dnsResolverStale')}{${sel}}`)})`, { legend: '{{region}} {{resolver_name}}' }),
  );

  const latency = targets(
    new timeseries.PanelBuilder().title('Lookup latency p90 per resolver').span(12).height(8).unit('s'),
    q(`histogram_quantile(0.9, sum by (region, resolver, resolver_name, le) (${dedup(`rate(${m('dnsLookupDuration')}_bucket{${sel}}[$__rate_interval])`)}))`, {
      legend: '{{region}} {{resolver_name}}',
    }),
  );

  const errors = targets(
    new timeseries.PanelBuilder().title('Failed lookups by class').span(12).height(8).unit('short').drawStyle(common.GraphDrawStyle.Bars).stacking(stacked()),
    q(`sum by (region, resolver, resolver_name, result) (${dedup(`increase(${m('dnsLookups')}{${sel}, result!="success"}[$__rate_interval])`)})`, {
      legend: '{{region}} {{resolver_name}} {{result}}',
    }),
  );

  return numberPanels(
    mailprobeDashboard({
      title: 'mailprobe / Resolvers',
      uid: 'mailprobe-resolvers',
      description: 'Answer side and TTL per resolver, TTL violators and how stale they are.',
    })
      .withVariable(probeVariable())
      .withVariable(resolverVariable())
      .withPanel(sides)
      .withPanel(bySide)
      .withPanel(honour)
      .withPanel(ttl)
      .withPanel(extension)
      .withPanel(violators)
      .withPanel(stale)
      .withPanel(latency)
      .withPanel(errors)
      .build(),
  );
}
