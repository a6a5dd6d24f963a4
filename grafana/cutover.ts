/**
 * Cutover overview: where the migration stands (phase, countdown, what DNS serves), whether the new
 * server is ready, how far the change has spread through the resolvers, and when switching and
 * turning the old server off are safe.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { dedup, lastValue, m, numberPanels, okMappings, q, RECORDED, targets, thresholds, valueMappings, mailprobeDashboard } from './common.js';

const windowStart = `max(${m('cutoverWindowStart')})`;
const windowEnd = `max(${m('cutoverWindowEnd')})`;

export function cutoverDashboard(): dashboard.Dashboard {
  const phase = targets(
    new stat.PanelBuilder()
      .title('Phase')
      .unit('none')
      .description('Before, inside or after the cutover window of the plan.')
      .span(4)
      .height(4)
      .reduceOptions(lastValue())
      .colorMode(common.BigValueColorMode.Background)
      .graphMode(common.BigValueGraphMode.None)
      .mappings(
        valueMappings({
          '0': { text: 'Before the window', color: 'blue' },
          '1': { text: 'In the window', color: 'orange' },
          '2': { text: 'After the window', color: 'green' },
        }),
      ),
    q(`(${windowStart} <= bool time()) + (${windowEnd} <= bool time())`, { legend: 'phase', instant: true }),
  );

  const countdown = targets(
    new stat.PanelBuilder()
      .title('Window')
      .description('Time until the window opens and until it closes (negative: already passed).')
      .span(6)
      .height(4)
      .unit('dtdurations')
      .reduceOptions(lastValue())
      .textMode(common.BigValueTextMode.ValueAndName)
      .graphMode(common.BigValueGraphMode.None),
    q(`${windowStart} - time()`, { legend: 'opens in', instant: true }),
    q(`${windowEnd} - time()`, { legend: 'closes in', instant: true }),
  );

  const served = targets(
    new stat.PanelBuilder()
      .title('Authoritative DNS serves')
      .unit('none')
      .description('The side the authoritative servers answer for the mail host (A record).')
      .span(4)
      .height(4)
      .reduceOptions(lastValue())
      .textMode(common.BigValueTextMode.Name)
      .graphMode(common.BigValueGraphMode.None),
    q(RECORDED.authoritativeSide, { legend: '{{side}}', instant: true }),
  );

  const safeSwitch = targets(
    new stat.PanelBuilder()
      .title('Safe to switch')
      .description('When every cache has seen the lowered TTL: the lowered TTL first seen at the authoritative servers plus the TTL that held before.')
      .span(5)
      .height(4)
      .unit('dateTimeFromNow')
      .reduceOptions(lastValue())
      .textMode(common.BigValueTextMode.ValueAndName)
      .graphMode(common.BigValueGraphMode.None),
    q(`max by (name) (${m('safeToSwitch')}) * 1000`, { legend: '{{name}}', instant: true }),
  );

  // Both conditions, each on its own (which one is still open), and the two together.
  const safeDecommission = targets(
    new stat.PanelBuilder()
      .title('Safe to turn the old server off')
      .unit('bool_yes_no')
      .description(
        'Yes when both hold for probes.decommission_quiet: no probe saw a resolver return the old IP (DNS quiet), and, where a log follower (mailprobe mta-log) runs beside the old server, no inbound SMTP session reached the old IP (old IP quiet). "Both" is the decision.',
      )
      .span(5)
      .height(4)
      .reduceOptions(lastValue())
      .colorMode(common.BigValueColorMode.Background)
      .graphMode(common.BigValueGraphMode.None)
      .textMode(common.BigValueTextMode.ValueAndName)
      .mappings(okMappings('Yes', 'Not yet')),
    q(`min by (name) (${dedup(m('safeToDecommission'))})`, { legend: 'DNS quiet ({{name}})', instant: true }),
    q(RECORDED.oldIpQuiet, { legend: 'old IP quiet ({{ip}})', instant: true }),
    q(RECORDED.safeToDecommission, { legend: 'both', instant: true }),
  );

  const oldNetworks = targets(
    new table.PanelBuilder()
      .title('Networks still delivering to the old IP')
      .description(
        'Inbound SMTP sessions and accepted messages on each old-side IP in the dashboard range, by client network, from the log follower beside the old server (mailprobe mta-log); "other" holds the networks outside the top N of each interval. Turning the old server off is safe once this is empty for probes.decommission_quiet.',
      )
      .span(24)
      .height(6)
      .unit('short'),
    q(`sort_desc(sum by (server, ip, client_net) (${dedup(`increase(${m('mtaInboundSessions')}{side="old"}[$__range])`)}) > 0)`, {
      instant: true,
      format: prometheus.PromQueryFormat.Table,
    }),
    q(`sum by (server, ip, client_net) (${dedup(`increase(${m('mtaInboundMessages')}{side="old"}[$__range])`)}) > 0`, {
      instant: true,
      format: prometheus.PromQueryFormat.Table,
    }),
  );

  // The follower's own health: lines of neither grammar (a changed log format reads as silence).
  const unknownLines = targets(
    new timeseries.PanelBuilder()
      .title('Mail server log lines not understood')
      .description(
        'Lines per minute of the mail server log that the follower (mailprobe mta-log) could not read as Postfix or Exim, by follower. Anything but 0 means its counts miss traffic.',
      )
      .span(24)
      .height(5)
      .unit('short'),
    q(`60 * sum by (server) (${dedup(`rate(${m('mtaLogLines')}{result="unknown"}[$__rate_interval])`)})`, { legend: '{{server}}' }),
  );

  // One query per checklist item; a missing item shows "No data" rather than a guess.
  const readiness = targets(
    new stat.PanelBuilder()
      .title('Readiness of the new server')
      .unit('bool_yes_no')
      .description('Every item must be OK before the switch. SPF must pass for both IPs during the overlap.')
      .span(24)
      .height(5)
      .reduceOptions(lastValue())
      .colorMode(common.BigValueColorMode.Background)
      .graphMode(common.BigValueGraphMode.None)
      .textMode(common.BigValueTextMode.ValueAndName)
      .mappings(okMappings('OK', 'FAIL'))
      .thresholds(
        thresholds([
          { value: null, color: 'red' },
          { value: 1, color: 'green' },
        ]),
      ),
    q(`max(${dedup(`${m('smtpUp')}{side="new"}`)})`, { legend: 'Accepting mail', instant: true }),
    q(`min(${dedup(`${m('ptrMatchesMailHost')}{side="new"}`)})`, { legend: 'PTR', instant: true }),
    // Before the switch the new IP's PTR (the mail host) cannot confirm yet: the prediction for
    // once the mail host points at it is what readiness means (after the switch it is the same).
    q(`min(${dedup(`${m('fcrdnsOkWhenServed')}{side="new"}`)})`, { legend: 'FCrDNS after the switch', instant: true }),
    q(`min(${dedup(m('spfPass'))})`, { legend: 'SPF (both IPs)', instant: true }),
    q(`min(${dedup(m('dkimKeyPresent'))})`, { legend: 'DKIM', instant: true }),
    q(`min(${dedup(m('dmarcPresent'))})`, { legend: 'DMARC', instant: true }),
    q(`1 - max(${dedup(`${m('dnsblListed')}{side="new"}`)})`, { legend: 'Not listed', instant: true }),
    q(`min(${dedup(`${m('tlsCertValid')}{side="new"}`)})`, { legend: 'Certificate valid', instant: true }),
  );

  const shareNew = targets(
    new timeseries.PanelBuilder()
      .title('Resolvers on the new IP')
      .description('Share of resolvers per region that answer the mail host with the new IP.')
      .span(12)
      .height(8)
      .unit('percentunit')
      .min(0)
      .max(1),
    q(`${RECORDED.resolversNewRatio}{region=~"$region"}`, { legend: '{{region}}' }),
  );

  const ttlHonour = targets(
    new timeseries.PanelBuilder()
      .title('Resolvers honouring the TTL per region')
      .description(
        'Per region, the share of resolvers whose TTL behaviour is known (observed after the old answer of the latest change expired) that did not serve it past the TTL. No line while none is known yet.',
      )
      .span(12)
      .height(8)
      .unit('percentunit')
      .min(0)
      .max(1),
    q(`${RECORDED.ttlHonouredRatio}{region=~"$region"}`, { legend: '{{region}}' }),
  );

  // Names from cutover.servers[].name (mailprobe_server_info, one copy per collector: max drops it).
  const named = (expr: string) => `${expr} * on (ip) group_left (server_name) max by (ip, server_name) (${m('serverInfo')})`;
  const reverseDns = targets(
    new table.PanelBuilder()
      .title('Reverse DNS per server IP')
      .unit('none')
      .description(
        'PTR names of each server IP; FCrDNS now (a PTR name resolves back to the IP); FCrDNS once the mail host points at the IP (the PTR is the mail host, or a name of its own resolving to it). Before the switch the new IP normally fails "now" and must pass "once served"; after it the old IP fails "now" (see the runbook, MailprobeOldIPFCrDNSLost).',
      )
      .span(24)
      .height(6),
    q(named(`max by (ip, side, ptr) (${dedup(m('ptrInfo'))})`), { instant: true, format: prometheus.PromQueryFormat.Table }),
    q(named(`max by (ip, side) (${dedup(m('fcrdnsOk'))})`), { instant: true, format: prometheus.PromQueryFormat.Table }),
    q(named(`max by (ip, side) (${dedup(m('fcrdnsOkWhenServed'))})`), { instant: true, format: prometheus.PromQueryFormat.Table }),
  );

  const ttlFleet = targets(
    new stat.PanelBuilder()
      .title('Resolvers honouring the TTL')
      .description(
        'All regions: the share of resolvers (what each probe asks) that were observed after the old answer of the latest change expired and did not serve it past the TTL. Before any change, or before the old TTL has run out, it is not yet known.',
      )
      .span(6)
      .height(5)
      .unit('percentunit')
      .noValue('not yet known')
      .reduceOptions(lastValue())
      .graphMode(common.BigValueGraphMode.None)
      .thresholds(
        thresholds([
          { value: null, color: 'red' },
          { value: 0.9, color: 'orange' },
          { value: 1, color: 'green' },
        ]),
      ),
    q(RECORDED.ttlHonouredFleet, { legend: 'honouring the TTL', instant: true }),
  );

  const ttlStates = targets(
    new stat.PanelBuilder()
      .title('TTL behaviour of resolvers')
      .description('Resolvers (what each probe asks) that honoured the TTL, ignored it, or have not been observed after an expiry yet.')
      .span(6)
      .height(5)
      .unit('short')
      .reduceOptions(lastValue())
      .textMode(common.BigValueTextMode.ValueAndName)
      .graphMode(common.BigValueGraphMode.None),
    q(RECORDED.ttlStates, { legend: '{{state}}', instant: true }),
  );

  const records = targets(
    new stat.PanelBuilder()
      .title('MTA-STS and TLSA')
      .description(
        "MTA-STS: no policy, or the policy's mx patterns cover the mail host. TLSA: records published at _25._tcp of the mail host, and per server IP whether one of them matches the certificate it presents (absent without records; the new IP must match before the switch).",
      )
      .span(6)
      .height(5)
      .unit('bool_yes_no')
      .reduceOptions(lastValue())
      .colorMode(common.BigValueColorMode.Background)
      .graphMode(common.BigValueGraphMode.None)
      .textMode(common.BigValueTextMode.ValueAndName),
    q(`min by (domain) (${dedup(m('mtaStsOk'))})`, { legend: 'MTA-STS {{domain}}', instant: true }),
    q(`max by (name) (${dedup(m('tlsaPresent'))})`, { legend: 'TLSA {{name}}', instant: true }),
    q(`min by (ip, side) (${dedup(m('tlsaMatch'))})`, { legend: 'TLSA matches {{side}} {{ip}}', instant: true }),
  );

  const dnsblErrors = targets(
    new timeseries.PanelBuilder()
      .title('Blocklist lookups failing')
      .description(
        'Blocklist queries per minute that gave no usable answer (a list refusing queries from public resolvers, timeouts): the listing state of those lists is unknown.',
      )
      .span(6)
      .height(5)
      .unit('short'),
    q(`60 * sum by (list) (${dedup(`rate(${m('dnsblErrors')}[$__rate_interval])`)})`, { legend: '{{list}}' }),
  );

  const firing = targets(
    new table.PanelBuilder().title('Firing alerts').unit('short').span(24).height(6),
    q('sum by (alertname, severity) (ALERTS{alertname=~"Mailprobe.*", alertstate="firing"})', {
      instant: true,
      format: prometheus.PromQueryFormat.Table,
    }),
  );

  return numberPanels(
    mailprobeDashboard({
      title: 'mailprobe / Cutover overview',
      uid: 'mailprobe-cutover',
      description: 'Where the mail server move stands: phase, readiness, DNS spread, safe to switch and to decommission.',
    })
      .withPanel(phase)
      .withPanel(countdown)
      .withPanel(served)
      .withPanel(safeSwitch)
      .withPanel(safeDecommission)
      .withPanel(readiness)
      .withPanel(reverseDns)
      .withPanel(shareNew)
      .withPanel(ttlHonour)
      .withPanel(ttlFleet)
      .withPanel(ttlStates)
      .withPanel(records)
      .withPanel(dnsblErrors)
      .withPanel(oldNetworks)
      .withPanel(unknownLines)
      .withPanel(firing)
      .build(),
  );
}
