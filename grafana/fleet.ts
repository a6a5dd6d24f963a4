/**
 * Fleet: the probes (how many, when they last pushed, what sits in their spools) and the health of
 * the collectors.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { dedup, lastValue, m, numberPanels, okMappings, probeVariable, q, stacked, targets, thresholds, mailprobeDashboard } from './common.js';
import { COLLECTOR_JOB, PROBE_JOB } from '../protocol/metrics.js';

/** Rows whose panels show data only in some setups: row title → what they need. */
export const OPTIONAL_ROWS: Readonly<Record<string, string>> = {
  'Remote write': 'collector.remote_write set in the plan',
  'Probes seen from inside': `Prometheus scraping the probes' --health-listen /metrics (job ${PROBE_JOB})`,
};

function remoteWriteRow(): dashboard.RowBuilder {
  const queue = targets(
    new timeseries.PanelBuilder().title('Remote-write queue').span(8).height(7).unit('short'),
    q(`max by (instance) (${m('collectorRemoteWriteQueue')})`, { legend: '{{instance}}' }),
  );
  const samples = targets(
    new timeseries.PanelBuilder().title('Samples sent per second by result').span(8).height(7).unit('short'),
    q(`sum by (instance, result) (rate(${m('collectorRemoteWriteSamples')}[$__rate_interval]))`, { legend: '{{instance}} {{result}}' }),
    q(`sum by (instance, reason) (rate(${m('collectorRemoteWriteDropped')}[$__rate_interval]))`, { legend: '{{instance}} dropped: {{reason}}' }),
  );
  const requests = targets(
    new timeseries.PanelBuilder().title('Remote-write requests').span(8).height(7).unit('short'),
    q(`sum by (instance, result) (rate(${m('collectorRemoteWriteRequests')}[$__rate_interval]))`, { legend: '{{instance}} {{result}}' }),
    q(`histogram_quantile(0.99, sum by (instance, le) (rate(${m('collectorRemoteWriteDuration')}_bucket[$__rate_interval])))`, {
      legend: '{{instance}} p99 s',
    }),
  );
  return new dashboard.RowBuilder('Remote write').collapsed(true).withPanel(queue).withPanel(samples).withPanel(requests);
}

function probeRow(): dashboard.RowBuilder {
  const sel = 'region=~"$region", probe=~"$probe"';
  const pushes = targets(
    new timeseries.PanelBuilder()
      .title('Pushes per minute by collector and result')
      .description('As each probe saw them: rejected and error pushes show a collector a probe cannot reach or that refuses it.')
      .span(12)
      .height(7)
      .unit('short'),
    q(`60 * sum by (probe, collector, result) (rate(${m('probePushes')}{${sel}}[$__rate_interval]))`, { legend: '{{probe}} → {{collector}} {{result}}' }),
  );
  const spooled = targets(
    new timeseries.PanelBuilder().title('Spooled (probe view)').span(12).height(7).unit('bytes'),
    q(`max by (region, probe) (${m('probeSpooledBytes')}{${sel}})`, { legend: '{{probe}} bytes' }),
  );
  const duration = targets(
    new timeseries.PanelBuilder().title('Check run p90 by type').span(12).height(7).unit('s'),
    q(`histogram_quantile(0.9, sum by (type, le) (rate(${m('probeCheckDuration')}_bucket{${sel}}[$__rate_interval])))`, { legend: '{{type}}' }),
  );
  const runs = targets(
    new timeseries.PanelBuilder().title('Check runs in flight').span(12).height(7).unit('short'),
    q(`sum by (probe) (${m('probeChecksInFlight')}{${sel}})`, { legend: '{{probe}}' }),
  );
  return new dashboard.RowBuilder('Probes seen from inside').collapsed(true).withPanel(pushes).withPanel(spooled).withPanel(duration).withPanel(runs);
}

export function fleetDashboard(): dashboard.Dashboard {
  const probes = targets(
    new stat.PanelBuilder()
      .title('Probes')
      .unit('short')
      .description('Probes any collector has accepted a batch from.')
      .span(4)
      .height(6)
      .reduceOptions(lastValue())
      .graphMode(common.BigValueGraphMode.None),
    q(`count(max by (region, probe) (${m('probeLastPush')}{region=~"$region", probe=~"$probe"}))`, { legend: 'probes', instant: true }),
  );

  const lastPush = targets(
    new bargauge.PanelBuilder()
      .title('Since the last push')
      .span(10)
      .height(6)
      .unit('s')
      .reduceOptions(lastValue())
      .thresholds(
        thresholds([
          { value: null, color: 'green' },
          { value: 120, color: 'orange' },
          { value: 300, color: 'red' },
        ]),
      ),
    q(`time() - max by (region, probe) (${m('probeLastPush')}{region=~"$region", probe=~"$probe"})`, { legend: '{{probe}} ({{region}})', instant: true }),
  );

  const collectorsUp = targets(
    new statetimeline.PanelBuilder()
      .title('Collectors up')
      .unit('bool_on_off')
      .span(10)
      .height(6)
      .mappings(okMappings('up', 'down'))
      .showValue(common.VisibilityMode.Never),
    q(`up{job="${COLLECTOR_JOB}"}`, { legend: '{{instance}}' }),
  );

  const spool = targets(
    new timeseries.PanelBuilder()
      .title('Spool depth')
      .description('Bytes waiting in each probe spool, as the probe last reported: grows while the probe cannot reach a collector.')
      .span(12)
      .height(8)
      .unit('bytes'),
    q(`max by (region, probe) (${m('probeSpoolBytes')}{region=~"$region", probe=~"$probe"})`, { legend: '{{probe}} ({{region}})' }),
  );

  const dropped = targets(
    new timeseries.PanelBuilder().title('Batches dropped from full spools').span(12).height(8).unit('short'),
    q(`max by (region, probe) (${m('probeSpoolDropped')}{region=~"$region", probe=~"$probe"})`, { legend: '{{probe}} ({{region}})' }),
  );

  const checks = targets(
    new timeseries.PanelBuilder().title('Check results per minute by type and outcome').span(12).height(8).unit('short').stacking(stacked()),
    q(`60 * sum by (type, result) (${dedup(`rate(${m('checks')}{region=~"$region", probe=~"$probe"}[$__rate_interval])`)})`, { legend: '{{type}} {{result}}' }),
  );

  const batches = targets(
    new timeseries.PanelBuilder().title('Batches per minute by result').span(12).height(8).unit('short'),
    q(`60 * sum by (instance, result) (rate(${m('collectorBatches')}[$__rate_interval]))`, { legend: '{{instance}} {{result}}' }),
  );

  const rejections = targets(
    new timeseries.PanelBuilder().title('Rejected requests by code').span(12).height(8).unit('short').drawStyle(common.GraphDrawStyle.Bars),
    q(`sum by (instance, code) (increase(${m('collectorRejections')}[$__rate_interval]))`, { legend: '{{instance}} {{code}}' }),
  );

  const results = targets(
    new timeseries.PanelBuilder().title('Results applied per second').span(12).height(8).unit('short'),
    q(`sum by (instance) (rate(${m('collectorResults')}[$__rate_interval]))`, { legend: '{{instance}}' }),
  );

  const ingest = targets(
    new timeseries.PanelBuilder().title('Batch ingest latency p99').span(12).height(8).unit('s'),
    q(`histogram_quantile(0.99, sum by (instance, le) (rate(${m('collectorIngestDuration')}_bucket[$__rate_interval])))`, { legend: '{{instance}}' }),
  );

  const series = targets(
    new bargauge.PanelBuilder()
      .title('Series per probe')
      .description('Distinct series each probe has written, bounded by collector.max_series_per_probe.')
      .span(12)
      .height(8)
      .unit('short')
      .reduceOptions(lastValue()),
    q(`max by (probe) (${m('collectorSeries')})`, { legend: '{{probe}}', instant: true }),
  );

  return numberPanels(
    mailprobeDashboard({
      title: 'mailprobe / Fleet',
      uid: 'mailprobe-fleet',
      description: 'Probes, their last push and spools, and the health of the collectors.',
    })
      .withVariable(probeVariable())
      .withPanel(probes)
      .withPanel(lastPush)
      .withPanel(collectorsUp)
      .withPanel(spool)
      .withPanel(dropped)
      .withPanel(checks)
      .withPanel(batches)
      .withPanel(rejections)
      .withPanel(results)
      .withPanel(ingest)
      .withPanel(series)
      .withRow(remoteWriteRow())
      .withRow(probeRow())
      .build(),
  );
}
