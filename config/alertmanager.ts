/**
 * The Alertmanager configuration of a cutover, rendered from the plan (`mailprobe render
 * alertmanager`): the plan is the only place the cutover window lives, so the `cutover-window` time
 * interval that decides when alerts also reach the cutover bridge is computed from
 * `cutover.window`, never written by hand.
 *
 * Routes by the `severity` label of the rules (deploy/prometheus/rules/mailprobe-alerts.yml):
 * inside the window critical and warning alerts also go to the cutover bridge; critical always
 * pages; warning goes to the team channel; info nowhere.
 */
import { Scalar, stringify } from 'yaml';
import type { PlanConfig } from './schema.js';

/** The name of the time interval the bridge route is active in. */
export const WINDOW_INTERVAL = 'cutover-window';

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'] as const;

/** One entry of an Alertmanager `time_intervals[].time_intervals` list. */
export interface TimeIntervalSpec {
  years: string[];
  months: string[];
  days_of_month: string[];
  times: { start_time: string; end_time: string }[];
  location: 'UTC';
}

const MINUTE = 60_000;
const DAY = 86_400_000;
const hhmm = (msOfDay: number) => {
  const m = Math.round(msOfDay / MINUTE);
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

/**
 * The window [start, end) as Alertmanager time intervals in UTC: one entry per day it touches
 * (consecutive whole days of one month merged into a `days_of_month` range). Alertmanager counts in
 * whole minutes, so the start is rounded down and the end up to the minute (the interval never
 * misses a moment of the window). Its end_time is exclusive, like the window's end.
 */
export function windowIntervals(startIso: string, endIso: string): TimeIntervalSpec[] {
  const start = Math.floor(Date.parse(startIso) / MINUTE) * MINUTE;
  const end = Math.ceil(Date.parse(endIso) / MINUTE) * MINUTE;
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) throw new Error(`window ${startIso} → ${endIso}: end must be after start`);
  const days: { day: number; from: number; to: number }[] = [];
  for (let day = Math.floor(start / DAY) * DAY; day < end; day += DAY) {
    const from = Math.max(start, day) - day;
    const to = Math.min(end, day + DAY) - day;
    if (to > from) days.push({ day, from, to });
  }
  const out: TimeIntervalSpec[] = [];
  let run: { first: Date; last: Date } | undefined;
  const flush = () => {
    if (!run) return;
    const d0 = run.first.getUTCDate();
    const d1 = run.last.getUTCDate();
    out.push(entry(run.first, [d0 === d1 ? `${d0}` : `${d0}:${d1}`], 0, DAY));
    run = undefined;
  };
  for (const { day, from, to } of days) {
    const date = new Date(day);
    if (from === 0 && to === DAY) {
      if (run && run.last.getUTCMonth() === date.getUTCMonth() && run.last.getTime() + DAY === day) run.last = date;
      else {
        flush();
        run = { first: date, last: date };
      }
      continue;
    }
    flush();
    out.push(entry(date, [`${date.getUTCDate()}`], from, to));
  }
  flush();
  return out;
}

function entry(date: Date, days: string[], from: number, to: number): TimeIntervalSpec {
  return {
    years: [`${date.getUTCFullYear()}`],
    months: [MONTHS[date.getUTCMonth()] ?? 'january'],
    days_of_month: days,
    times: [{ start_time: hhmm(from), end_time: hhmm(to) }],
    location: 'UTC',
  };
}

export interface AlertmanagerReceivers {
  /** Webhook that pages (critical). */
  pager: string;
  /** Webhook of the team channel (warning). */
  team: string;
  /** Webhook of the cutover bridge (critical and warning inside the window). */
  bridge: string;
}

export const DEFAULT_RECEIVERS: AlertmanagerReceivers = {
  pager: 'http://alert-bridge.internal:8080/pager',
  team: 'http://alert-bridge.internal:8080/team',
  bridge: 'http://alert-bridge.internal:8080/cutover',
};

/** The Alertmanager configuration as an object (what {@link renderAlertmanager} writes as YAML). */
export function alertmanagerConfig(plan: PlanConfig, receivers: AlertmanagerReceivers = DEFAULT_RECEIVERS): Record<string, unknown> {
  const webhook = (url: string) => [{ url, send_resolved: true }];
  return {
    global: { resolve_timeout: '5m' },
    route: {
      receiver: 'team-channel',
      group_by: ['alertname', 'ip', 'via_ip', 'region', 'resolver'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '4h',
      routes: [
        {
          receiver: 'cutover-bridge',
          matchers: ['severity=~"critical|warning"'],
          active_time_intervals: [WINDOW_INTERVAL],
          group_wait: '10s',
          group_interval: '1m',
          repeat_interval: '15m',
          continue: true,
        },
        { receiver: 'pager', matchers: ['severity="critical"'], group_wait: '10s', group_interval: '1m', repeat_interval: '30m' },
        { receiver: 'team-channel', matchers: ['severity="warning"'] },
        { receiver: 'blackhole', matchers: ['severity="info"'] },
      ],
    },
    inhibit_rules: [
      { source_matchers: ['alertname="MailprobeCollectorsAllDown"'], target_matchers: ['alertname="MailprobeCollectorDown"'] },
      {
        source_matchers: ['alertname="MailprobeDeliveryFailingServedIP"'],
        target_matchers: ['alertname=~"MailprobeDeliveryFailingServedIPOutsideWindow|MailprobeNewServerNotReady|MailprobeCertificateInvalid"'],
        equal: ['ip'],
      },
      {
        source_matchers: ['alertname="MailprobeDeliveryFailingServedIP"'],
        target_matchers: ['alertname="MailprobeDeliveryRatioLowServedIP"'],
        equal: ['ip', 'region'],
      },
      { source_matchers: ['alertname="MailprobeRoundtripLostInWindow"'], target_matchers: ['alertname="MailprobeRoundtripLost"'], equal: ['via_ip'] },
    ],
    time_intervals: [{ name: WINDOW_INTERVAL, time_intervals: windowIntervals(plan.cutover.window.start, plan.cutover.window.end) }],
    receivers: [
      { name: 'pager', webhook_configs: webhook(receivers.pager) },
      { name: 'team-channel', webhook_configs: webhook(receivers.team) },
      { name: 'cutover-bridge', webhook_configs: webhook(receivers.bridge) },
      { name: 'blackhole' },
    ],
  };
}

/** The configuration as YAML with a header saying where it came from. */
export function renderAlertmanager(plan: PlanConfig, receivers: AlertmanagerReceivers = DEFAULT_RECEIVERS, source = 'the plan'): string {
  const { start, end } = plan.cutover.window;
  const header = [
    `# Alertmanager for mailprobe, rendered from ${source} by \`mailprobe render alertmanager\`: do not edit,`,
    '# change the plan and render again. Check with: amtool check-config alertmanager.yml',
    '#',
    '# Routes by the `severity` label of the rules (deploy/prometheus/rules/mailprobe-alerts.yml):',
    '#   inside the cutover window (time interval cutover-window) critical and warning alerts also go',
    '#   to the cutover bridge, where the people doing the switch are watching;',
    '#   critical → pager (delivery to the served IP failing or flapping in the window, round-trip',
    '#              loss in the window, every collector down);',
    '#   warning  → team channel;',
    '#   info     → nowhere (dashboards only).',
    `# The window: ${start} → ${end} (cutover.window), in UTC days, rounded out to whole minutes.`,
    '',
  ].join('\n');
  // Times quoted: a plain 20:00 is a base-60 integer to YAML 1.1 readers.
  const quoteTimes = (_key: unknown, v: unknown) => {
    if (typeof v === 'string' && /^\d\d:\d\d$/.test(v)) {
      const s = new Scalar(v);
      s.type = Scalar.QUOTE_SINGLE;
      return s;
    }
    return v;
  };
  return header + stringify(alertmanagerConfig(plan, receivers), quoteTimes, { lineWidth: 0 });
}
