/**
 * Round trip: signed test messages sent via each destination IP and received at the sink — how
 * long they take, how many are lost, and what the receiving side said about SPF, DKIM, DMARC and
 * FCrDNS of the delivering server.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { dedup, labelVariable, lastValue, m, numberPanels, probeVariable, q, RECORDED, stacked, targets, mailprobeDashboard } from './common.js';

const viaVariable = () => labelVariable('via_ip', 'via_ip', m('roundtrips'), 'Delivering IP');

/**
 * Inbox placement at real receivers (the inbox check): where each receiver's seed mailbox filed
 * the test messages per delivering IP, how long they took, and the receiver's own verdicts.
 */
function inboxRow(): dashboard.RowBuilder {
  const sel = `region=~"$region", probe=~"$probe", via_ip=~"$via_ip"`;
  const counted = (filter: string) => dedup(`increase(${m('inboxes')}{${sel}${filter}}[$__range])`);
  const placement = targets(
    new table.PanelBuilder()
      .title('Inbox placement per receiver and delivering IP')
      .description(
        'Test messages in the time range by where the receiver filed them: inbox, spam (\\Junk or a configured spam folder), other, lost (not found by the deadline), failed (not sent, or the mailbox could not be read).',
      )
      .unit('short')
      .span(12)
      .height(8),
    q(`round(sum by (receiver, via_ip, result) (${counted('')}))`, { instant: true, format: prometheus.PromQueryFormat.Table }),
  );
  const spamShare = targets(
    new table.PanelBuilder()
      .title('Share in spam per receiver and delivering IP')
      .description(
        'Of the test messages found in the time range, the share the receiver filed as spam. The new IP high where the old IP is low: its reputation there is not built yet.',
      )
      .unit('percentunit')
      .span(12)
      .height(8),
    q(
      `(sum by (receiver, via_ip) (${counted(', result="spam"')}) or 0 * sum by (receiver, via_ip) (${counted(', result=~"inbox|other"')})) / sum by (receiver, via_ip) (${counted(', result=~"inbox|spam|other"')})`,
      { instant: true, format: prometheus.PromQueryFormat.Table },
    ),
  );
  const latency = targets(
    new timeseries.PanelBuilder()
      .title('Arrival at the receivers, p90')
      .description('Send → the receiver’s arrival time (INTERNALDATE) per receiver and delivering IP.')
      .span(12)
      .height(8)
      .unit('s'),
    q(`histogram_quantile(0.9, sum by (receiver, via_ip, le) (${dedup(`rate(${m('inboxDuration')}_bucket{${sel}}[$__rate_interval])`)}))`, {
      legend: '{{receiver}} via {{via_ip}}',
    }),
  );
  const verdicts = targets(
    new table.PanelBuilder()
      .title('Verdicts of the real receivers on the last message')
      .description(
        'The spf, dkim, dmarc and arc results in the Authentication-Results each receiver added, per delivering IP (a row per verdict any probe saw last).',
      )
      .unit('none')
      .span(12)
      .height(8),
    q(`max by (receiver, via_ip, method, result) (${m('inboxAuth')}{${sel}}) == 1`, { instant: true, format: prometheus.PromQueryFormat.Table }),
  );
  return new dashboard.RowBuilder('Inbox placement at real receivers').withPanel(placement).withPanel(spamShare).withPanel(latency).withPanel(verdicts);
}

export function roundtripDashboard(): dashboard.Dashboard {
  const quantiles = targets(
    new timeseries.PanelBuilder()
      .title('Round-trip latency by delivering IP')
      .description('p50, p90 and p99 of send → arrival at the sink per delivering IP (15 m, all regions).')
      .span(12)
      .height(8)
      .unit('s'),
    q(`${RECORDED.roundtripQuantiles}{via_ip=~"$via_ip"}`, { legend: 'p{{quantile}} via {{via_ip}} ({{side}})' }),
  );

  const perRegion = targets(
    new timeseries.PanelBuilder().title('Round-trip p90 per region').span(12).height(8).unit('s'),
    q(
      `histogram_quantile(0.9, sum by (region, via_ip, le) (${dedup(`rate(${m('roundtripDuration')}_bucket{region=~"$region", probe=~"$probe", via_ip=~"$via_ip"}[$__rate_interval])`)}))`,
      { legend: '{{region}} via {{via_ip}}' },
    ),
  );

  const lost = targets(
    new stat.PanelBuilder()
      .title('Lost messages in the time range')
      .unit('short')
      .span(8)
      .height(6)
      .reduceOptions(lastValue())
      .textMode(common.BigValueTextMode.ValueAndName)
      .graphMode(common.BigValueGraphMode.None)
      .colorMode(common.BigValueColorMode.Background)
      .thresholds(
        new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
          { value: null, color: 'green' },
          { value: 1, color: 'red' },
        ]),
      ),
    q(
      `round(sum by (via_ip, side) (${dedup(`increase(${m('roundtrips')}{result="lost", region=~"$region", probe=~"$probe", via_ip=~"$via_ip"}[$__range])`)}))`,
      {
        legend: 'via {{via_ip}} ({{side}})',
        instant: true,
      },
    ),
  );

  const lostRatio = targets(
    new timeseries.PanelBuilder().title('Share of messages lost').span(8).height(6).unit('percentunit').min(0).max(1),
    q(`${RECORDED.roundtripLostRatio}{via_ip=~"$via_ip"}`, { legend: 'via {{via_ip}} ({{side}})' }),
  );

  const results = targets(
    new timeseries.PanelBuilder().title('Round trips by result').span(8).height(6).unit('short').stacking(stacked()),
    q(`sum by (via_ip, result) (${dedup(`increase(${m('roundtrips')}{region=~"$region", probe=~"$probe", via_ip=~"$via_ip"}[$__rate_interval])`)})`, {
      legend: '{{via_ip}} {{result}}',
    }),
  );

  const verdicts = targets(
    new table.PanelBuilder()
      .title('Receiver verdicts of the last message per delivering IP')
      .unit('none')
      .description('What the receiving side concluded about the delivering server (spf, dkim, dmarc, fcrdns).')
      .span(24)
      .height(7),
    q(`max by (via_ip, method, result) (${m('roundtripAuth')}{via_ip=~"$via_ip"}) == 1`, {
      instant: true,
      format: prometheus.PromQueryFormat.Table,
    }),
  );

  return numberPanels(
    mailprobeDashboard({
      title: 'mailprobe / Round trip',
      uid: 'mailprobe-roundtrip',
      description: 'Test messages through the real mail servers: latency by delivering IP, losses and receiver verdicts.',
      refresh: '1m',
    })
      .withVariable(probeVariable())
      .withVariable(viaVariable())
      .withPanel(quantiles)
      .withPanel(perRegion)
      .withPanel(lost)
      .withPanel(lostRatio)
      .withPanel(results)
      .withPanel(verdicts)
      .withRow(inboxRow())
      .build(),
  );
}
