import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { startAuthoritative, type Authoritative } from '../../../lab/dns/authoritative.js';
import { generateDkimKey } from '../../../lab/dns/zone.js';
import { makeLabCerts, type LabCerts } from '../../../lab/mta/certs.js';
import { startMtas, type LabMtas } from '../../../lab/mta/index.js';
import { roundtrip, roundtripCheck, roundtripSettings, type RoundtripSettings, type RoundtripTarget } from '../../../probe/checks/roundtrip.js';
import { dnsResolver, preciseNow, Sink } from '../../../probe/sink/index.js';
import { closeSharedSinks, sharedSink } from '../../../probe/sink/shared.js';
import { RoundtripResult } from '../../../protocol/results.js';
import { startTestCollector } from '../../support/collector.js';
import { testPlan } from '../../../bench/lib/plan.js';
import { batchOf, sampleIn, testCtx } from '../../../bench/lib/smtp-support.js';

const MAIL_HOST = 'mail.company.test';
const RT = 'mailprobe-rt@company.test';
const FROM = 'mailprobe@company.test';
const SECRET_ENV = 'MAILPROBE_TEST_RT_SECRET';
process.env[SECRET_ENV] = 'roundtrip-test-secret-0123456789';

let dns: Authoritative;
let certs: LabCerts;
let sink: Sink;
let mtas: LabMtas;
const key = generateDkimKey();

before(async () => {
  // SPF lists only the old IP and only the old IP has a PTR: the new side fails both.
  dns = await startAuthoritative({
    domain: 'company.test',
    mailHost: MAIL_HOST,
    spf: 'old',
    dmarc: 'reject',
    dkimKey: key,
    ptr: { '127.0.0.2': [MAIL_HOST] },
    initial: { ttl: 60, serve: 'old' },
  });
  certs = await makeLabCerts({ mailHost: MAIL_HOST });
  sink = await Sink.start({
    host: '127.0.0.1',
    port: 0,
    address: RT,
    secret: process.env[SECRET_ENV]!,
    maxSize: 64 * 1024,
    name: 'sink.probes.test',
    resolver: dnsResolver(dns.address),
  });
  const dkim = { domainName: 'company.test', keySelector: 's2026', privateKey: key.privateKey };
  mtas = await startMtas({
    mailHost: MAIL_HOST,
    domain: 'company.test',
    certs,
    relay: [RT],
    sink: { host: sink.host, port: sink.port },
    dkim: { old: dkim, new: dkim },
    names: { old: 'mx-old.company.test', new: 'mx-new.company.test' },
  });
});

after(async () => {
  await mtas.close();
  await sink.close();
  await closeSharedSinks();
  await dns.close();
  await certs.cleanup();
});

afterEach(async () => {
  await mtas.setFault('old', null);
  await mtas.setFault('new', null);
  mtas.setSink({ host: sink.host, port: sink.port });
});

function settings(over: Partial<RoundtripSettings> = {}): RoundtripSettings {
  return {
    smtp: {
      mailHost: MAIL_HOST,
      mode: 'rcpt',
      tls: 'opportunistic',
      from: 'probe@probes.test',
      to: 'postmaster@company.test',
      helo: 'probe.probes.test',
      caFile: certs.caFile,
      connectTimeoutMs: 1000,
      bannerTimeoutMs: 1000,
      commandTimeoutMs: 2000,
    },
    to: RT,
    from: FROM,
    secretEnv: SECRET_ENV,
    deadlineMs: 3000,
    sink: () => Promise.resolve({ waitFor: (id, until, signal) => sink.waitFor(id, until, signal), now: preciseNow, sameClock: true }),
    ...over,
  };
}

const via = (side: 'old' | 'new'): RoundtripTarget => ({ ip: mtas[side].ip, side, port: mtas[side].port, sameClock: true });

async function run(t: RoundtripTarget, s: RoundtripSettings, signal?: AbortSignal): Promise<RoundtripResult> {
  const r = await roundtrip(t, s, testCtx(signal ? { signal } : {}));
  assert.ok(Value.Check(RoundtripResult, r), `result matches the wire schema: ${JSON.stringify([...Value.Errors(RoundtripResult, r)].slice(0, 3))}`);
  return r;
}

describe('roundtrip check through the lab MTAs', () => {
  test('via the old IP: delivered from 127.0.0.2, latency on one clock, receiver verdicts all pass', async () => {
    const r = await run(via('old'), settings());
    assert.equal(r.ok, true, r.message);
    assert.equal(r.delivered, true);
    assert.equal(r.viaIp, '127.0.0.2');
    assert.equal(r.side, 'old');
    assert.equal(r.sameClock, true);
    assert.equal(r.deliveringIp, '127.0.0.2');
    assert.equal(r.helo, 'mx-old.company.test');
    assert.ok(r.latencySeconds! > 0 && r.latencySeconds! < 3, `latency ${r.latencySeconds}`);
    assert.ok(r.latencySeconds! <= r.durationSeconds);
    assert.deepEqual(r.verdicts, { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' });
    assert.match(r.messageId, /^[0-9a-f]{24}$/);
    assert.equal(mtas.old.relayed.at(-1)?.ok, true);
  });

  test('via the new IP: the sink sees 127.0.0.3, which SPF and FCrDNS do not confirm', async () => {
    const r = await run(via('new'), settings());
    assert.equal(r.delivered, true, r.message);
    assert.equal(r.deliveringIp, '127.0.0.3');
    assert.equal(r.helo, 'mx-new.company.test');
    assert.deepEqual(r.verdicts, { spf: 'fail', dkim: 'pass', dmarc: 'pass', fcrdns: 'fail' });
  });

  test('a message the server accepts but never relays is lost at the deadline', async () => {
    mtas.setSink(undefined);
    const r = await run(via('new'), settings({ deadlineMs: 500 }));
    assert.equal(r.ok, false);
    assert.equal(r.delivered, false);
    assert.equal(r.errorClass, 'lost');
    assert.equal(r.code, 'rt_lost');
    assert.equal(r.phase, 'wait');
    assert.equal(r.latencySeconds, undefined);
    assert.equal(r.verdicts, undefined);
    assert.ok(r.durationSeconds >= 0.5 && r.durationSeconds < 2, `duration ${r.durationSeconds}`);
  });

  test('a message the server refuses is not waited for: the SMTP error class', async () => {
    await mtas.setFault('old', { kind: 'temp-fail', at: 'rcpt' });
    const r = await run(via('old'), settings());
    assert.equal(r.delivered, false);
    assert.equal(r.errorClass, 'temp_fail');
    assert.equal(r.code, 'smtp_temp_fail');
    assert.equal(r.phase, 'send:rcpt');
    assert.ok(r.durationSeconds < 2.5, `duration ${r.durationSeconds} (the deadline is 3 s)`);
  });

  test('a connection dropped after DATA: protocol, nothing delivered', async () => {
    await mtas.setFault('new', { kind: 'drop-after-data' });
    const r = await run(via('new'), settings({ deadlineMs: 400 }));
    assert.equal(r.errorClass, 'protocol', 'the probe saw the drop');
    assert.equal(r.code, 'smtp_closed');
    assert.equal(r.delivered, false);
  });

  test('the runtime aborting the wait gives timeout, not lost', async () => {
    mtas.setSink(undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 400);
    const r = await run(via('old'), settings({ deadlineMs: 5000 }), ac.signal);
    assert.equal(r.errorClass, 'timeout');
    assert.equal(r.phase, 'wait');
    assert.ok(r.durationSeconds < 3, 'well before the 5 s deadline');
  });

  test('a missing secret is bad config (throws)', async () => {
    await assert.rejects(roundtrip(via('old'), settings({ secretEnv: 'MAILPROBE_TEST_RT_UNSET' }), testCtx()), /MAILPROBE_TEST_RT_UNSET/);
  });
});

describe('roundtrip from the plan', () => {
  test('targets, timeout and the shared in-process sink', async () => {
    const plan = testPlan({
      probes: {
        smtp: { ca_file: certs.caFile },
        roundtrip: {
          to: RT,
          from: FROM,
          secret_env: SECRET_ENV,
          deadline: '3s',
          sink: { listen: '127.0.0.1:0', resolver: dns.address, name: 'shared-sink.probes.test' },
        },
      },
    });
    assert.equal(roundtripCheck.timeoutMs?.(plan), 3000 + plan.probes.timeout);
    assert.deepEqual(roundtripCheck.targets(testPlan()), [], 'no roundtrip section, no targets');
    const jobs = roundtripCheck.targets(plan);
    assert.deepEqual(
      jobs.map((j) => j.key),
      ['127.0.0.2:25', '127.0.0.3:25'],
    );
    const shared = await sharedSink(plan);
    assert.equal(await sharedSink(plan), shared, 'one sink per process');
    mtas.setSink({ host: '127.0.0.1', port: shared.port });
    const job = jobs[0]!;
    const r = await run({ ...job.target, port: mtas.old.port }, job.settings);
    assert.equal(r.delivered, true, r.message);
    assert.equal(r.sameClock, true);
    assert.equal(r.deliveringIp, '127.0.0.2');
    assert.deepEqual(r.verdicts, { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' });
    assert.equal(roundtripSettings(plan)?.from, FROM);
  });
});

describe('roundtrip results at the collector', () => {
  test('both destination IPs produce the round-trip metrics of protocol/metrics.ts', async () => {
    const results = [await run(via('old'), settings()), await run(via('new'), settings())];
    mtas.setSink(undefined);
    results.push(await run(via('new'), settings({ deadlineMs: 300 })));
    const c = await startTestCollector(testPlan());
    try {
      const res = await c.push(batchOf(results));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const text = await c.scrape();
      const sample = (name: string, labels: Record<string, string>) => sampleIn(text, name, labels);
      for (const [ip, side] of [
        ['127.0.0.2', 'old'],
        ['127.0.0.3', 'new'],
      ] as const) {
        assert.equal(sample('mailprobe_roundtrip_duration_seconds_count', { via_ip: ip, side }), 1);
        assert.equal(sample('mailprobe_roundtrip_total', { via_ip: ip, side, result: 'delivered' }), 1);
        assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: ip, method: 'dkim', result: 'pass' }), 1);
      }
      assert.equal(sample('mailprobe_roundtrip_total', { via_ip: '127.0.0.3', result: 'lost' }), 1);
      assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: '127.0.0.2', method: 'spf', result: 'pass' }), 1);
      assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: '127.0.0.3', method: 'spf', result: 'fail' }), 1);
      assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: '127.0.0.3', method: 'fcrdns', result: 'fail' }), 1);
      assert.equal(sample('mailprobe_roundtrip_auth', { via_ip: '127.0.0.2', method: 'fcrdns', result: 'pass' }), 1);
    } finally {
      await c.close();
    }
  });
});
