/**
 * Delivery by destination IP: how fast and how reliably each IP takes mail, per region, with the
 * time split into SMTP phases and the failures by error class.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { SMTP_PHASES } from '../protocol/results.js';
import { dedup, ipVariable, lastValue, m, numberPanels, okMappings, probeVariable, q, RECORDED, stacked, targets, mailprobeDashboard } from './common.js';

/** Recorded series (by region and IP); raw series also by probe. */
const sel = 'region=~"$region", ip=~"$ip"';
const rawSel = `${sel}, probe=~"$probe"`;

function phaseVariable(): dashboard.CustomVariableBuilder {
  return new dashboard.CustomVariableBuilder('phase')
    .label('Phase')
    .description('SMTP phase of the latency panels; rcpt (mode rcpt) or data (mode data) is the delivery itself.')
    .values(SMTP_PHASES.join(','))
    .current({ selected: true, text: 'rcpt', value: 'rcpt' })
    .options(SMTP_PHASES.map((p) => ({ selected: p === 'rcpt', text: p, value: p })));
}

export function deliveryDashboard(): dashboard.Dashboard {
  const success = targets(
    new timeseries.PanelBuilder()
      .title('Delivery success ratio')
      .description('Share of SMTP checks that succeeded, per destination IP and region (5 m).')
      .span(12)
      .height(8)
      .unit('percentunit')
      .min(0)
      .max(1),
    q(`${RECORDED.smtpSuccessRatio}{${sel}}`, { legend: '{{ip}} ({{side}}) {{region}}' }),
  );

  const up = targets(
    new statetimeline.PanelBuilder()
      .title('Last SMTP check per probe')
      .unit('bool_on_off')
      .span(12)
      .height(8)
      .mappings(okMappings('up', 'down'))
      .showValue(common.VisibilityMode.Never),
    q(`${dedup(`${m('smtpUp')}{${rawSel}}`)}`, { legend: '{{probe}} → {{ip}}' }),
  );

  const quantiles = targets(
    new timeseries.PanelBuilder()
      .title('Latency quantiles of phase $phase')
      .description('p50, p90 and p99 of the selected SMTP phase per destination IP and region (5 m).')
      .span(12)
      .height(8)
      .unit('s'),
    q(`${RECORDED.smtpQuantiles}{${sel}, phase=~"$phase"}`, { legend: 'p{{quantile}} {{ip}} ({{side}}) {{region}}' }),
  );

  const sessions = targets(
    new timeseries.PanelBuilder()
      .title('Session latency per destination IP')
      .description('p50 and p95 of whole successful SMTP sessions (connect to quit) per destination IP, all regions (5 m): old against new.')
      .span(12)
      .height(8)
      .unit('s'),
    q(`${RECORDED.smtpSessionQuantiles}{ip=~"$ip"}`, { legend: '{{side}} {{ip}} p{{quantile}}' }),
  );

  const session = targets(
    new timeseries.PanelBuilder()
      .title('Mean SMTP session')
      .description('Mean time of a whole session (all phases) per destination IP and region (5 m).')
      .span(12)
      .height(8)
      .unit('s'),
    q(`${RECORDED.smtpSessionMean}{${sel}}`, { legend: '{{ip}} {{region}}' }),
  );

  // One heatmap per destination IP (repeated over $ip), over the selected regions.
  const heat = targets(
    new heatmap.PanelBuilder()
      .title('Latency of phase $phase to $ip')
      .unit('s')
      .span(12)
      .height(8)
      .repeat('ip')
      .repeatDirection('h')
      .maxPerRow(2)
      .calculate(false)
      .yAxis(new heatmap.YAxisConfigBuilder().unit('s')),
    q(`sum by (le) (${dedup(`increase(${m('smtpDuration')}_bucket{${rawSel}, phase=~"$phase"}[$__rate_interval])`)})`, {
      legend: '{{le}}',
      format: prometheus.PromQueryFormat.Heatmap,
    }),
  );

  const failures = targets(
    new timeseries.PanelBuilder()
      .title('Failures by class')
      .description('Failed SMTP checks per minute by error class, per destination IP and region.')
      .span(12)
      .height(8)
      .unit('short')
      .drawStyle(common.GraphDrawStyle.Bars)
      .stacking(stacked()),
    q(`60 * ${RECORDED.smtpFailureRate}{${sel}}`, { legend: '{{result}} {{ip}} {{region}}' }),
  );

  const phases = targets(
    new timeseries.PanelBuilder()
      .title('Phase breakdown')
      .description('Mean time per SMTP phase, stacked: where a session spends its time.')
      .span(12)
      .height(8)
      .unit('s')
      .stacking(stacked()),
    q(
      `sum by (ip, phase) (${dedup(`rate(${m('smtpDuration')}_sum{${rawSel}}[$__rate_interval])`)})
/ sum by (ip, phase) (${dedup(`rate(${m('smtpDuration')}_count{${rawSel}}[$__rate_interval])`)})`,
      { legend: '{{ip}} {{phase}}' },
    ),
  );

  const cert = targets(
    new stat.PanelBuilder()
      .title('Certificate expires in')
      .span(12)
      .height(4)
      .unit('dtdurations')
      .reduceOptions(lastValue())
      .textMode(common.BigValueTextMode.ValueAndName)
      .graphMode(common.BigValueGraphMode.None),
    q(`min by (ip, side) (${m('tlsCertExpiry')}{ip=~"$ip"}) - time()`, { legend: '{{ip}} ({{side}})', instant: true }),
  );

  const checks = targets(
    new timeseries.PanelBuilder().title('SMTP checks per minute by result').span(12).height(8).unit('short').stacking(stacked()),
    q(`60 * sum by (ip, result) (${dedup(`rate(${m('smtpChecks')}{${rawSel}}[$__rate_interval])`)})`, { legend: '{{ip}} {{result}}' }),
  );

  return numberPanels(
    mailprobeDashboard({
      title: 'mailprobe / Delivery by destination IP',
      uid: 'mailprobe-delivery',
      description: 'Latency, success and failures of SMTP checks per destination IP and region.',
      from: 'now-3h',
    })
      .withVariable(ipVariable())
      .withVariable(probeVariable())
      .withVariable(phaseVariable())
      .withPanel(success)
      .withPanel(sessions)
      .withPanel(up)
      .withPanel(quantiles)
      .withPanel(session)
      .withPanel(heat)
      .withPanel(failures)
      .withPanel(phases)
      .withPanel(checks)
      .withPanel(cert)
      .build(),
  );
}
