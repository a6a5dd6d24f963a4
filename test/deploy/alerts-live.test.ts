/**
 * The alert rules live: a real Prometheus scraping a real collector whose plan window is open, with
 * the deploy rules on a 60× compressed timeline (compressRules: `for: 2m` → 2 s, silent after
 * 300 s → 5 s). A probe whose resolvers serve the new IP reports the new server refusing
 * connections: the page fires, and resolves once delivery works again. A probe stops pushing: it
 * is reported silent, and not once it pushes again. Then the collector stops: the collector alerts
 * fire. Prometheus sends the alerts to a real Alertmanager running the configuration
 * `mailprobe render alertmanager` makes of the test plan (its window is open now; webhooks pointed
 * at a local receiver, waits shortened): the page reaches the pager and the cutover bridge,
 * warnings the team channel and the bridge. Times from fault to firing are printed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { renderAlertmanager } from '../../config/alertmanager.js';
import type { CheckResult } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import {
  DEPLOY_RULE_FILES,
  compressRules,
  durationSeconds,
  overrideFor,
  startTestAlertmanager,
  startTestPrometheus,
  type TestAlertmanager,
  type ActiveAlert,
  type TestPrometheus,
} from '../../bench/lib/prometheus.js';
import { MAIL_HOST, NEW_IP, OLD_IP } from './fixtures.js';

let collector: TestCollector;
let prom: TestPrometheus;
let am: TestAlertmanager;
let webhook: Server;
/** Alert names the Alertmanager delivered, by receiver (the webhook path). */
const received = new Map<string, Set<string>>();

interface Route {
  receiver?: string;
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  routes?: Route[];
}

/**
 * The Alertmanager configuration `mailprobe render alertmanager` makes of the test plan (its window
 * is open now: an hour either side), with webhooks to `base` and second-long waits.
 */
function alertmanagerConfig(base: string): string {
  const text = renderAlertmanager(testPlan(), { pager: `${base}/pager`, team: `${base}/team`, bridge: `${base}/cutover` });
  const cfg = parse(text) as { route: Route; time_intervals: { name: string }[] };
  const shorten = (r: Route) => {
    if (r.group_wait) r.group_wait = '100ms';
    if (r.group_interval) r.group_interval = '1s';
    if (r.repeat_interval) r.repeat_interval = '1h';
    for (const c of r.routes ?? []) shorten(c);
  };
  shorten(cfg.route);
  assert.deepEqual(
    cfg.time_intervals.map((t) => t.name),
    ['cutover-window'],
  );
  return stringify(cfg);
}

async function deliveredTo(receiver: string, alertname: string): Promise<boolean> {
  return received.get(receiver)?.has(alertname) ?? false;
}
let collectorClosed = false;
let seq = 0;

function batch(newServerUp: boolean, probe = { id: 'p-eu', region: 'eu' }): Batch {
  const t = Date.now();
  const results: CheckResult[] = [];
  for (const resolver of ['system', '8.8.8.8', 'auth:ns1.company.test']) {
    results.push({
      type: 'dns',
      startedAt: t,
      durationSeconds: 0.003,
      ok: true,
      resolver,
      authoritative: resolver.startsWith('auth:'),
      name: MAIL_HOST,
      qtype: 'A',
      transport: 'udp',
      rcode: 'NOERROR',
      answers: [NEW_IP],
      ttl: 300,
      side: 'new',
    });
  }
  results.push({
    type: 'smtp',
    startedAt: t,
    durationSeconds: 0.05,
    ok: true,
    ip: OLD_IP,
    side: 'old',
    port: 587,
    mode: 'rcpt',
    phases: { connect: 0.001, banner: 0.01, ehlo: 0.002, mail: 0.002, rcpt: 0.003, quit: 0.001 },
    replyCode: 250,
  });
  results.push(
    newServerUp
      ? {
          type: 'smtp',
          startedAt: t,
          durationSeconds: 0.05,
          ok: true,
          ip: NEW_IP,
          side: 'new',
          port: 587,
          mode: 'rcpt',
          phases: { connect: 0.001, banner: 0.01, ehlo: 0.002, mail: 0.002, rcpt: 0.003, quit: 0.001 },
          replyCode: 250,
        }
      : {
          type: 'smtp',
          startedAt: t,
          durationSeconds: 0.001,
          ok: false,
          phase: 'connect',
          errorClass: 'connect_refused',
          code: 'SMTP_CONNECT_REFUSED',
          message: `connect ECONNREFUSED ${NEW_IP}:587`,
          ip: NEW_IP,
          side: 'new',
          port: 587,
          mode: 'rcpt',
          phases: { connect: 0.001 },
        },
  );
  seq++;
  return { probe: { ...probe, version: '0.1.0' }, batch: { id: `live-${t}-${seq}`, seq, createdAt: t }, results };
}

const named = (alerts: ActiveAlert[], name: string, state = 'firing') => alerts.filter((a) => a.labels.alertname === name && a.state === state);

before(async () => {
  webhook = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      const msg = JSON.parse(body) as { status: string; alerts: { status: string; labels: Record<string, string> }[] };
      const set = received.get(req.url ?? '') ?? new Set<string>();
      for (const a of msg.alerts) if (a.status === 'firing') set.add(a.labels.alertname ?? '');
      received.set(req.url ?? '', set);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  const addr = webhook.address();
  assert.ok(addr && typeof addr === 'object');
  am = await startTestAlertmanager(alertmanagerConfig(`http://127.0.0.1:${addr.port}`));
  collector = await startTestCollector(testPlan());
  prom = await startTestPrometheus({
    targets: [new URL(collector.url).host],
    ruleTransform: (text) => compressRules(text, 60),
    alertmanagers: [am.address],
  });
  await prom.waitForScrapes(1, 20_000);
});

after(async () => {
  await prom?.stop();
  await am?.stop();
  if (!collectorClosed) await collector?.close();
  await new Promise((r) => webhook?.close(r));
});

test('overrideFor rewrites every for: of the alert rules', () => {
  const text = 'rules:\n  - alert: A\n    expr: x\n    for: 10m\n  - alert: B\n    expr: y\n    for: 2m\n';
  assert.equal(overrideFor(text, '1s'), text.replace('for: 10m', 'for: 1s').replace('for: 2m', 'for: 1s'));
});

test('compressRules divides for:, ranges and duration thresholds, and promtool accepts the result', async (t) => {
  assert.equal(durationSeconds('1h30m'), 5400);
  assert.throws(() => durationSeconds('5 minutes'));
  const rule = '    expr: time() - max(max_over_time(x[1h])) > 300 and y == 1 and z < 14 * 86400\n    for: 10m\n';
  assert.equal(compressRules(rule, 60), '    expr: time() - max(max_over_time(x[60s])) > 5 and y == 1 and z < 20160\n    for: 10s\n');
  assert.equal(compressRules('rate(x[5m])', 600), 'rate(x[3s])', 'ranges keep three scrapes');
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-compressed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = DEPLOY_RULE_FILES.map((f) => {
    const out = join(dir, basename(f));
    writeFileSync(out, compressRules(readFileSync(f, 'utf8'), 60));
    return out;
  });
  const r = await promisify(execFile)('promtool', ['check', 'rules', ...files]);
  // Every rule of every file survives the compression (none dropped as unparsable).
  for (const f of DEPLOY_RULE_FILES) {
    const n = (readFileSync(f, 'utf8').match(/^\s+- (alert|record): /gm) ?? []).length;
    assert.ok(n > 0);
    assert.match(r.stdout, new RegExp(`${basename(f)}\\n  SUCCESS: ${n} rules found`));
  }
});

test('delivery to the served new IP refused inside the window pages, and resolves when fixed', async () => {
  assert.equal((await collector.push(batch(false))).status, 200);
  const t0 = Date.now();
  await prom.waitFor(async () => named(await prom.alerts(), 'MailprobeDeliveryFailingServedIP').length > 0, 20_000, 'the page');
  const fired = Date.now() - t0;
  const alerts = await prom.alerts();
  const page = named(alerts, 'MailprobeDeliveryFailingServedIP');
  assert.equal(page.length, 1);
  assert.deepEqual(
    { ip: page[0]?.labels.ip, side: page[0]?.labels.side, region: page[0]?.labels.region, severity: page[0]?.labels.severity },
    { ip: NEW_IP, side: 'new', region: 'eu', severity: 'critical' },
  );
  assert.match(page[0]?.annotations.summary ?? '', /fails in the cutover window/);
  // Inside the window it is a page, not the warning; the old IP (not served) never alerts.
  assert.deepEqual(named(alerts, 'MailprobeDeliveryFailingServedIPOutsideWindow', 'pending'), []);
  assert.deepEqual(named(alerts, 'MailprobeDeliveryFailingServedIPOutsideWindow'), []);

  assert.equal((await collector.push(batch(true))).status, 200);
  const t1 = Date.now();
  await prom.waitFor(async () => (await prom.alerts()).every((a) => a.labels.alertname !== 'MailprobeDeliveryFailingServedIP'), 20_000, 'the page to resolve');
  const resolved = Date.now() - t1;
  // The page went to the pager (and nowhere else: it is not a warning).
  await prom.waitFor(() => deliveredTo('/pager', 'MailprobeDeliveryFailingServedIP'), 10_000, 'the page at the pager webhook');
  // Inside the window the page also reaches the cutover bridge.
  await prom.waitFor(() => deliveredTo('/cutover', 'MailprobeDeliveryFailingServedIP'), 10_000, 'the page at the bridge webhook');
  assert.equal(await deliveredTo('/team', 'MailprobeDeliveryFailingServedIP'), false);
  console.log(
    `# served IP refusing: firing ${(fired / 1000).toFixed(1)} s after the push, resolved ${(resolved / 1000).toFixed(1)} s after the fix (scrape and eval every 1 s, for: 2m at 60× = 2 s)`,
  );
});

test('a probe that stops pushing is reported silent, and not once it pushes again', async () => {
  const us = { id: 'p-us', region: 'us' };
  assert.equal((await collector.push(batch(true, us))).status, 200);
  const t0 = Date.now();
  const silent = async () => named(await prom.alerts(), 'MailprobeProbeSilent').filter((a) => a.labels.probe === 'p-us');
  await prom.waitFor(async () => (await silent()).length > 0, 20_000, 'p-us silent');
  const fired = Date.now() - t0;
  // Silent after 300 s / 60 = 5 s, plus for: 1m / 60 = 1 s.
  assert.ok(fired >= 5000, `fired after ${fired} ms`);
  assert.equal((await silent())[0]?.labels.region, 'us');
  assert.equal((await collector.push(batch(true, us))).status, 200);
  await prom.waitFor(async () => (await silent()).length === 0, 20_000, 'p-us no longer silent');
  // A warning inside the window: the team channel and the cutover bridge, not the pager.
  await prom.waitFor(
    async () => (await deliveredTo('/team', 'MailprobeProbeSilent')) && (await deliveredTo('/cutover', 'MailprobeProbeSilent')),
    10_000,
    'the warning at the team and bridge webhooks',
  );
  assert.equal(await deliveredTo('/pager', 'MailprobeProbeSilent'), false);
  console.log(`# probe stopped: MailprobeProbeSilent firing ${(fired / 1000).toFixed(1)} s after its last push (threshold 5 s at 60×)`);
});

test('a stopped collector makes the collector alerts fire', async () => {
  await collector.close();
  collectorClosed = true;
  const t0 = Date.now();
  await prom.waitFor(
    async () => {
      const a = await prom.alerts();
      return named(a, 'MailprobeCollectorDown').length > 0 && named(a, 'MailprobeCollectorsAllDown').length > 0;
    },
    20_000,
    'MailprobeCollectorDown and MailprobeCollectorsAllDown',
  );
  const a = await prom.alerts();
  assert.equal(named(a, 'MailprobeCollectorsAllDown')[0]?.labels.severity, 'critical');
  assert.equal(named(a, 'MailprobeCollectorDown')[0]?.labels.instance, new URL(collector.url).host);
  await prom.waitFor(() => deliveredTo('/pager', 'MailprobeCollectorsAllDown'), 10_000, 'CollectorsAllDown at the pager');
  console.log(`# collector stopped: MailprobeCollectorDown and CollectorsAllDown firing after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
