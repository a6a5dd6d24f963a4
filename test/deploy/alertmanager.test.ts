/**
 * The Alertmanager configuration rendered from the plan (`mailprobe render alertmanager`): the
 * window becomes UTC-day time intervals (values checked for windows across midnight, a month and a
 * year end, with an offset and seconds); deploy/alertmanager/alertmanager.yml is what the command
 * renders from the compose plan; amtool accepts it and routes by severity; and real Alertmanager
 * processes with configs rendered for windows that contain the present instant, ended just before
 * it and start just after it deliver critical alerts to the pager and warnings to the team always,
 * and both to the cutover bridge only inside the window.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { renderAlertmanager, windowIntervals } from '../../config/alertmanager.js';
import { loadPlan, validatePlan } from '../../config/load.js';
import { runCli } from '../support/cli.js';
import { testPlanInput } from '../../bench/lib/plan.js';
import { startTestAlertmanager, type TestAlertmanager } from '../../bench/lib/prometheus.js';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

test('the window becomes UTC days of whole minutes: across midnight, whole days merged, month and year ends, offsets', () => {
  const day = (y: string, m: string, d: string, start: string, end: string) => ({
    years: [y],
    months: [m],
    days_of_month: [d],
    times: [{ start_time: start, end_time: end }],
    location: 'UTC',
  });
  assert.deepEqual(windowIntervals('2026-12-04T20:00:00Z', '2026-12-04T22:30:00Z'), [day('2026', 'december', '4', '20:00', '22:30')]);
  assert.deepEqual(windowIntervals('2026-12-04T20:00:00Z', '2026-12-05T02:00:00Z'), [
    day('2026', 'december', '4', '20:00', '24:00'),
    day('2026', 'december', '5', '00:00', '02:00'),
  ]);
  // Ends at midnight: no empty interval for the next day.
  assert.deepEqual(windowIntervals('2026-12-04T20:00:00Z', '2026-12-05T00:00:00Z'), [day('2026', 'december', '4', '20:00', '24:00')]);
  // +01:00 offset, seconds rounded out (start down, end up), two whole days merged, new year.
  assert.deepEqual(windowIntervals('2026-12-31T23:30:10+01:00', '2027-01-03T01:00:30+01:00'), [
    day('2026', 'december', '31', '22:30', '24:00'),
    day('2027', 'january', '1:2', '00:00', '24:00'),
    day('2027', 'january', '3', '00:00', '00:01'),
  ]);
  // Whole days in two months are two entries.
  assert.deepEqual(
    windowIntervals('2026-11-29T00:00:00Z', '2026-12-02T00:00:00Z').map((e) => `${e.months[0]} ${e.days_of_month[0]}`),
    ['november 29:30', 'december 1'],
  );
  assert.throws(() => windowIntervals('2026-12-05T00:00:00Z', '2026-12-04T00:00:00Z'), /end must be after start/);
});

test('deploy/alertmanager/alertmanager.yml is what mailprobe render alertmanager makes of the compose plan', async () => {
  const plan = await loadPlan(join(root, 'deploy/compose/plan.yaml'));
  const committed = readFileSync(join(root, 'deploy/alertmanager/alertmanager.yml'), 'utf8');
  assert.equal(
    committed,
    renderAlertmanager(plan, undefined, 'deploy/compose/plan.yaml'),
    'stale: run mailprobe render alertmanager --config deploy/compose/plan.yaml > deploy/alertmanager/alertmanager.yml',
  );
  const cli = runCli(['render', 'alertmanager', '--config', 'deploy/compose/plan.yaml']);
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(cli.stdout, committed);
  // The window of the plan, nowhere else.
  const am = parse(committed) as { time_intervals: { name: string; time_intervals: { days_of_month: string[]; times: { start_time: string }[] }[] }[] };
  assert.deepEqual(
    am.time_intervals.map((t) => t.name),
    ['cutover-window'],
  );
  assert.deepEqual(
    am.time_intervals[0]?.time_intervals.map((t) => `${t.days_of_month[0]} ${t.times[0]?.start_time}`),
    ['4 20:00', '5 00:00'],
  );
});

test('mailprobe render: --help, usage errors, a bad plan named by path and rule, receiver URLs', () => {
  const help = runCli(['render', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: mailprobe render alertmanager --config FILE/);
  assert.match(runCli(['--help']).stdout, /mailprobe render alertmanager --config FILE/);
  const none = runCli(['render', 'alertmanager'], { MAILPROBE_CONFIG: undefined });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--config FILE is required/);
  const what = runCli(['render', 'grafana', '--config', 'deploy/compose/plan.yaml']);
  assert.equal(what.status, 2);
  assert.match(what.stderr, /cannot render "grafana"/);
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-render-'));
  try {
    const bad = join(dir, 'plan.yaml');
    writeFileSync(bad, readFileSync(join(root, 'deploy/compose/plan.yaml'), 'utf8').replace('end: 2026-12-05T02:00:00Z', 'end: tomorrow'));
    const r = runCli(['render', 'alertmanager', '--config', bad]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cutover\.window\.end: must be an RFC 3339 time/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const url = runCli(['render', 'alertmanager', '--config', 'deploy/compose/plan.yaml', '--pager-url', 'not a url']);
    assert.equal(url.status, 2);
    assert.match(url.stderr, /--pager-url: must be an http\(s\) URL/);
    const urls = runCli([
      'render',
      'alertmanager',
      '--config',
      'deploy/compose/plan.yaml',
      '--pager-url',
      'https://pager.example/hook',
      '--bridge-url',
      'https://chat.example/bridge',
    ]);
    const cfg = parse(urls.stdout) as { receivers: { name: string; webhook_configs?: { url: string }[] }[] };
    assert.deepEqual(
      cfg.receivers.map((x) => [x.name, x.webhook_configs?.[0]?.url]),
      [
        ['pager', 'https://pager.example/hook'],
        ['team-channel', 'http://alert-bridge.internal:8080/team'],
        ['cutover-bridge', 'https://chat.example/bridge'],
        ['blackhole', undefined],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('amtool accepts the rendered configuration and routes critical to the pager, warnings to the team, both to the bridge', async () => {
  const cfg = join(root, 'deploy/alertmanager/alertmanager.yml');
  const check = await run('amtool', ['check-config', cfg]);
  assert.match(check.stdout, /SUCCESS/);
  // amtool does not evaluate time intervals: it lists every receiver a label set can reach.
  const route = async (...labels: string[]) => (await run('amtool', ['config', 'routes', 'test', `--config.file=${cfg}`, ...labels])).stdout.trim();
  assert.equal(await route('severity=critical', 'alertname=MailprobeDeliveryRatioLowServedIP'), 'cutover-bridge,pager');
  assert.equal(await route('severity=warning', 'alertname=MailprobeSPFNotPassing'), 'cutover-bridge,team-channel');
  assert.equal(await route('severity=info'), 'blackhole');
  assert.equal(await route('alertname=Unlabelled'), 'team-channel');
});

// --- Real Alertmanagers at instants inside and outside the window --------------------------------

/** Alert names delivered, by webhook path (`/<case>/<receiver>`). */
const received = new Map<string, Set<string>>();
let webhook: Server;
let base = '';
const managers = new Map<string, TestAlertmanager>();
const HOUR = 3_600_000;

/** Windows relative to now: inside (crossing two midnights), ended 5 min ago, starting in 5 min. */
const CASES: Record<string, { start: number; end: number; inside: boolean }> = {
  inside: { start: -25 * HOUR, end: HOUR, inside: true },
  ended: { start: -25 * HOUR, end: -300_000, inside: false },
  future: { start: 300_000, end: 25 * HOUR, inside: false },
};

interface Route {
  group_wait?: string;
  group_interval?: string;
  routes?: Route[];
}

before(async () => {
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const set = received.get(req.url ?? '') ?? new Set<string>();
      for (const a of (JSON.parse(body) as { alerts: { labels: { alertname: string } }[] }).alerts) set.add(a.labels.alertname);
      received.set(req.url ?? '', set);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  const addr = webhook.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const now = Date.now();
  await Promise.all(
    Object.entries(CASES).map(async ([name, w]) => {
      const plan = validatePlan(
        testPlanInput({ cutover: { window: { start: new Date(now + w.start).toISOString(), end: new Date(now + w.end).toISOString() } } }),
      );
      const text = renderAlertmanager(plan, { pager: `${base}/${name}/pager`, team: `${base}/${name}/team`, bridge: `${base}/${name}/bridge` });
      // Second-long waits so the test does not wait for production grouping.
      const cfg = parse(text) as { route: Route };
      const shorten = (r: Route) => {
        r.group_wait = '100ms';
        r.group_interval = '1s';
        for (const c of r.routes ?? []) shorten(c);
      };
      shorten(cfg.route);
      managers.set(name, await startTestAlertmanager(stringify(cfg)));
    }),
  );
});

after(async () => {
  for (const am of managers.values()) await am.stop();
  webhook?.close();
});

test('a real Alertmanager sends critical and warning alerts to the bridge only at an instant inside the window', async () => {
  const alerts = [
    { labels: { alertname: 'MailprobeDeliveryRatioLowServedIP', severity: 'critical', ip: '198.51.100.20', region: 'eu' } },
    { labels: { alertname: 'MailprobeSPFNotPassing', severity: 'warning', ip: '198.51.100.20' } },
    { labels: { alertname: 'MailprobeInfoOnly', severity: 'info' } },
  ];
  for (const am of managers.values()) {
    const r = await fetch(`${am.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
    assert.equal(r.status, 200, await r.text());
  }
  const has = (path: string, name: string) => received.get(path)?.has(name) ?? false;
  const deadline = Date.now() + 20_000;
  const expected = (): boolean =>
    Object.keys(CASES).every((c) => has(`/${c}/pager`, 'MailprobeDeliveryRatioLowServedIP') && has(`/${c}/team`, 'MailprobeSPFNotPassing')) &&
    has('/inside/bridge', 'MailprobeDeliveryRatioLowServedIP') &&
    has('/inside/bridge', 'MailprobeSPFNotPassing');
  while (!expected() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // The muted bridge routes were dispatched with the others: give them a few group intervals more.
  await new Promise((r) => setTimeout(r, 2_500));
  const got = Object.fromEntries([...received].map(([k, v]) => [k, [...v].sort()]));
  assert.deepEqual(got, {
    '/inside/pager': ['MailprobeDeliveryRatioLowServedIP'],
    '/inside/team': ['MailprobeSPFNotPassing'],
    '/inside/bridge': ['MailprobeDeliveryRatioLowServedIP', 'MailprobeSPFNotPassing'],
    '/ended/pager': ['MailprobeDeliveryRatioLowServedIP'],
    '/ended/team': ['MailprobeSPFNotPassing'],
    '/future/pager': ['MailprobeDeliveryRatioLowServedIP'],
    '/future/team': ['MailprobeSPFNotPassing'],
  });
});
