/**
 * The alert rules live: a real Prometheus (rules with `for:` shortened to 1 s) scraping a real
 * collector whose plan window is open. A probe whose resolvers serve the new IP reports the new
 * server refusing connections: the page fires, and resolves once delivery works again. Then the
 * collector stops: the collector alerts fire. Times from fault to firing are printed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckResult } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../support/plan.js';
import { overrideFor, startTestPrometheus, type ActiveAlert, type TestPrometheus } from '../support/prometheus.js';
import { MAIL_HOST, NEW_IP, OLD_IP } from './fixtures.js';

let collector: TestCollector;
let prom: TestPrometheus;
let collectorClosed = false;
let seq = 0;

function batch(newServerUp: boolean): Batch {
  const t = Date.now();
  const results: CheckResult[] = [];
  for (const resolver of ['system', '8.8.8.8', 'auth:ns1.company.test']) {
    results.push({
      type: 'dns', startedAt: t, durationSeconds: 0.003, ok: true, resolver, authoritative: resolver.startsWith('auth:'), name: MAIL_HOST,
      qtype: 'A', transport: 'udp', rcode: 'NOERROR', answers: [NEW_IP], ttl: 300, side: 'new',
    });
  }
  results.push({
    type: 'smtp', startedAt: t, durationSeconds: 0.05, ok: true, ip: OLD_IP, side: 'old', port: 587, mode: 'rcpt',
    phases: { connect: 0.001, banner: 0.01, ehlo: 0.002, mail: 0.002, rcpt: 0.003, quit: 0.001 }, replyCode: 250,
  });
  results.push(
    newServerUp
      ? {
          type: 'smtp', startedAt: t, durationSeconds: 0.05, ok: true, ip: NEW_IP, side: 'new', port: 587, mode: 'rcpt',
          phases: { connect: 0.001, banner: 0.01, ehlo: 0.002, mail: 0.002, rcpt: 0.003, quit: 0.001 }, replyCode: 250,
        }
      : {
          type: 'smtp', startedAt: t, durationSeconds: 0.001, ok: false, phase: 'connect', errorClass: 'connect_refused', code: 'SMTP_CONNECT_REFUSED',
          message: `connect ECONNREFUSED ${NEW_IP}:587`, ip: NEW_IP, side: 'new', port: 587, mode: 'rcpt', phases: { connect: 0.001 },
        },
  );
  seq++;
  return { probe: { id: 'p-eu', region: 'eu', version: '0.1.0' }, batch: { id: `live-${t}-${seq}`, seq, createdAt: t }, results };
}

const named = (alerts: ActiveAlert[], name: string, state = 'firing') => alerts.filter((a) => a.labels.alertname === name && a.state === state);

before(async () => {
  collector = await startTestCollector(testPlan());
  prom = await startTestPrometheus({ targets: [new URL(collector.url).host], ruleTransform: (text) => overrideFor(text, '1s') });
  await prom.waitForScrapes(1, 20_000);
});

after(async () => {
  await prom?.stop();
  if (!collectorClosed) await collector?.close();
});

test('overrideFor rewrites every for: of the alert rules', () => {
  const text = 'rules:\n  - alert: A\n    expr: x\n    for: 10m\n  - alert: B\n    expr: y\n    for: 2m\n';
  assert.equal(overrideFor(text, '1s'), text.replace('for: 10m', 'for: 1s').replace('for: 2m', 'for: 1s'));
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
  console.log(`# served IP refusing: firing ${(fired / 1000).toFixed(1)} s after the push, resolved ${(resolved / 1000).toFixed(1)} s after the fix (scrape and eval every 1 s, for: 1s)`);
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
  console.log(`# collector stopped: MailprobeCollectorDown and CollectorsAllDown firing after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
