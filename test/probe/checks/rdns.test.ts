import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rdnsCheck, rdnsSettings, runRdns } from '../../../probe/checks/rdns.js';
import type { RdnsResult } from '../../../protocol/results.js';
import { isCheckResult } from '../../../probe/valid-result.js';
import { startDnsWorld, type DnsWorld } from '../../../lab/dns/world.js';
import { startTestCollector, type TestCollector } from '../../support/collector.js';
import { batchOf, makeCtx, worldPlan } from '../../../bench/lib/dns-support.js';

const view = ({ ip, side, ok, ptrNames, fcrdns, matchesMailHost, errorClass, code }: RdnsResult) => ({
  ip,
  side,
  ok,
  ptrNames,
  fcrdns,
  matchesMailHost,
  ...(ok ? {} : { errorClass, code }),
});

describe('rdns check against the lab', () => {
  let w: DnsWorld;
  let col: TestCollector;
  before(async () => {
    // 127.0.0.2 → the mail host (FCrDNS holds while the A record is old: the A set must contain the IP);
    // 127.0.0.3 → a provider name that does not resolve back; 127.0.0.4 → no PTR at all.
    w = await startDnsWorld({
      initial: { ttl: 5, serve: 'both' },
      ptr: { '127.0.0.2': ['mail.company.test'], '127.0.0.3': ['host-3.provider-b.company.test', 'mail.company.test'] },
    });
    col = await startTestCollector(worldPlan(w));
  });
  after(async () => {
    await col.close();
    await w.close();
  });

  test('targets: every server IP with its side', () => {
    assert.deepEqual(
      rdnsCheck.targets(worldPlan(w)).map((t) => t.target),
      [
        { ip: '127.0.0.2', side: 'old' },
        { ip: '127.0.0.3', side: 'new' },
      ],
    );
  });

  test('PTR names, forward confirmation, mail host match; and the gauges', async () => {
    const plan = worldPlan(w);
    const s = rdnsSettings(plan);
    const ctx = makeCtx();
    const old = await runRdns({ ip: '127.0.0.2', side: 'old' }, s, ctx);
    const neu = await runRdns({ ip: '127.0.0.3', side: 'new' }, s, ctx);
    assert.ok(isCheckResult(old) && isCheckResult(neu));
    assert.deepEqual(view(old), { ip: '127.0.0.2', side: 'old', ok: true, ptrNames: ['mail.company.test'], fcrdns: true, matchesMailHost: true });
    assert.deepEqual(view(neu), {
      ip: '127.0.0.3',
      side: 'new',
      ok: true,
      ptrNames: ['host-3.provider-b.company.test', 'mail.company.test'],
      fcrdns: true,
      matchesMailHost: true,
    });
    await col.push(batchOf([old, neu]));
    assert.equal(await col.sample('mailprobe_fcrdns_ok', { ip: '127.0.0.2', side: 'old' }), 1);
    assert.equal(await col.sample('mailprobe_ptr_matches_mail_host', { ip: '127.0.0.3', side: 'new' }), 1);
    assert.equal(await col.sample('mailprobe_fcrdns_ok_when_served', { ip: '127.0.0.2', side: 'old' }), 1);
    assert.equal(await col.sample('mailprobe_ptr_info', { ip: '127.0.0.3', side: 'new', ptr: 'host-3.provider-b.company.test,mail.company.test' }), 1);
  });

  test('a PTR name that does not resolve back fails forward confirmation', async () => {
    w.auth.set({ serve: 'old' });
    w.resolvers.honest.flush();
    try {
      const plan = worldPlan(w);
      const r = await runRdns({ ip: '127.0.0.3', side: 'new' }, rdnsSettings(plan), makeCtx());
      assert.deepEqual(view(r), {
        ip: '127.0.0.3',
        side: 'new',
        ok: true,
        ptrNames: ['host-3.provider-b.company.test', 'mail.company.test'],
        fcrdns: false,
        matchesMailHost: true,
      });
      assert.match(
        r.message ?? '',
        /no PTR name resolves back to 127\.0\.0\.3: host-3\.provider-b\.company\.test → NXDOMAIN; mail\.company\.test → 127\.0\.0\.2; it will once mail\.company\.test points at 127\.0\.0\.3$/,
      );
      await col.push(batchOf([r]));
      assert.equal(await col.sample('mailprobe_fcrdns_ok', { ip: '127.0.0.3', side: 'new' }), 0);
      // The new IP before the switch: not now, but once the mail host points at it.
      assert.equal(await col.sample('mailprobe_fcrdns_ok_when_served', { ip: '127.0.0.3', side: 'new' }), 1);
      // Only a provider name that does not resolve: it will not hold after the switch either.
      w.auth.updateZone({ ptr: { '127.0.0.2': ['mail.company.test'], '127.0.0.3': ['host-3.provider-b.company.test'] } });
      w.resolvers.honest.flush();
      const own = await runRdns({ ip: '127.0.0.3', side: 'new' }, rdnsSettings(plan), makeCtx());
      assert.deepEqual(view(own), {
        ip: '127.0.0.3',
        side: 'new',
        ok: true,
        ptrNames: ['host-3.provider-b.company.test'],
        fcrdns: false,
        matchesMailHost: false,
      });
      assert.match(own.message ?? '', /; it will not once mail\.company\.test points at 127\.0\.0\.3 either$/);
      await col.push(batchOf([own]));
      assert.equal(await col.sample('mailprobe_fcrdns_ok_when_served', { ip: '127.0.0.3', side: 'new' }), 0);
      assert.equal(await col.sample('mailprobe_ptr_info', { ip: '127.0.0.3', side: 'new', ptr: 'host-3.provider-b.company.test' }), 1);
      assert.equal(
        await col.sample('mailprobe_ptr_info', { ip: '127.0.0.3', side: 'new', ptr: 'host-3.provider-b.company.test,mail.company.test' }),
        undefined,
      );
    } finally {
      w.auth.set(null);
      w.auth.updateZone({ ptr: { '127.0.0.2': ['mail.company.test'], '127.0.0.3': ['host-3.provider-b.company.test', 'mail.company.test'] } });
      w.resolvers.honest.flush();
    }
  });

  test('no PTR at all is a finding, not a failure; DNS errors are failures', async () => {
    const plan = worldPlan(w, {
      cutover: {
        servers: [
          { ip: '127.0.0.2', side: 'old' },
          { ip: '127.0.0.4', side: 'new' },
        ],
      },
    });
    const s = rdnsSettings(plan);
    const none = await runRdns({ ip: '127.0.0.4', side: 'new' }, s, makeCtx());
    assert.deepEqual(view(none), { ip: '127.0.0.4', side: 'new', ok: true, ptrNames: [], fcrdns: false, matchesMailHost: false });
    assert.equal(none.message, 'no PTR record for 127.0.0.4');
    // A collector whose plan has 127.0.0.4 (collectors refuse results for IPs their plan does not name).
    const col4 = await startTestCollector(plan);
    try {
      assert.equal((await col4.push(batchOf([none]))).status, 200);
      assert.equal(await col4.sample('mailprobe_fcrdns_ok_when_served', { ip: '127.0.0.4', side: 'new' }), 0);
      assert.equal(await col4.sample('mailprobe_ptr_info', { ip: '127.0.0.4', side: 'new', ptr: '(none)' }), 1);
    } finally {
      await col4.close();
    }
    w.resolvers.honest.flush();
    w.auth.fault({ kind: 'servfail' });
    try {
      const failed = await runRdns({ ip: '127.0.0.2', side: 'old' }, s, makeCtx());
      assert.deepEqual(view(failed), {
        ip: '127.0.0.2',
        side: 'old',
        ok: false,
        ptrNames: [],
        fcrdns: false,
        matchesMailHost: false,
        errorClass: 'servfail',
        code: 'dns_servfail',
      });
      assert.equal(failed.phase, 'ptr');
      assert.ok(isCheckResult(failed));
      await col.push(batchOf([failed]));
      assert.equal(await col.sample('mailprobe_fcrdns_ok', { ip: '127.0.0.2', side: 'old' }), 0);
      assert.equal(await col.sample('mailprobe_checks_total', { region: 'eu', probe: 'p-eu', type: 'rdns', result: 'servfail' }), 1);
    } finally {
      w.auth.fault(null);
    }
  });
});
