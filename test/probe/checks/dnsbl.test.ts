import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { dnsblCheck, runDnsbl } from '../../../probe/checks/dnsbl.js';
import { dnsSettings } from '../../../probe/dns/lookup.js';
import type { DnsblResult } from '../../../protocol/results.js';
import { isCheckResult } from '../../../probe/valid-result.js';
import { startDnsWorld, type DnsWorld } from '../../../lab/dns/world.js';
import { startTestCollector, type TestCollector } from '../../support/collector.js';
import { batchOf, makeCtx, worldPlan } from '../../../bench/lib/dns-support.js';

const view = ({ ip, side, list, ok, listed, answers, errorClass, code }: DnsblResult) => ({
  ip,
  side,
  list,
  ok,
  listed,
  answers,
  ...(ok ? {} : { errorClass, code }),
});

describe('dnsbl check against the lab', () => {
  let w: DnsWorld;
  let col: TestCollector;
  before(async () => {
    w = await startDnsWorld({
      dnsbl: [
        { zone: 'bl.lab.test', listed: { '127.0.0.3': ['127.0.0.2', '127.0.0.10'] } },
        { zone: 'refuse.lab.test', refuse: true },
        { zone: 'hijack.lab.test', listed: { '127.0.0.2': ['192.0.2.1'] } },
      ],
    });
    col = await startTestCollector(worldPlan(w));
  });
  after(async () => {
    await col.close();
    await w.close();
  });

  test('targets: every server IP × every list', () => {
    assert.deepEqual(
      dnsblCheck.targets(worldPlan(w)).map((t) => t.key),
      ['127.0.0.2@bl.lab.test', '127.0.0.2@refuse.lab.test', '127.0.0.3@bl.lab.test', '127.0.0.3@refuse.lab.test'],
    );
  });

  test('listed, not listed, refused (127.255.255.x), rewritten NXDOMAIN; metrics', async () => {
    const plan = worldPlan(w);
    const s = dnsSettings(plan);
    const ctx = makeCtx();
    const out = [
      await runDnsbl({ ip: '127.0.0.2', side: 'old', list: 'bl.lab.test' }, s, ctx),
      await runDnsbl({ ip: '127.0.0.3', side: 'new', list: 'bl.lab.test' }, s, ctx),
      await runDnsbl({ ip: '127.0.0.3', side: 'new', list: 'refuse.lab.test' }, s, ctx),
      await runDnsbl({ ip: '127.0.0.2', side: 'old', list: 'hijack.lab.test' }, s, ctx),
    ];
    for (const r of out) assert.ok(isCheckResult(r));
    assert.deepEqual(out.map(view), [
      { ip: '127.0.0.2', side: 'old', list: 'bl.lab.test', ok: true, listed: false, answers: [] },
      { ip: '127.0.0.3', side: 'new', list: 'bl.lab.test', ok: true, listed: true, answers: ['127.0.0.10', '127.0.0.2'] },
      {
        ip: '127.0.0.3',
        side: 'new',
        list: 'refuse.lab.test',
        ok: false,
        listed: false,
        answers: ['127.255.255.254'],
        errorClass: 'dnsbl_refused',
        code: 'dnsbl_refused',
      },
      {
        ip: '127.0.0.2',
        side: 'old',
        list: 'hijack.lab.test',
        ok: false,
        listed: false,
        answers: ['192.0.2.1'],
        errorClass: 'bad_response',
        code: 'dnsbl_bad_answer',
      },
    ]);
    await col.push(batchOf(out));
    assert.equal(await col.sample('mailprobe_dnsbl_listed', { ip: '127.0.0.2', side: 'old', list: 'bl.lab.test' }), 0);
    assert.equal(await col.sample('mailprobe_dnsbl_listed', { ip: '127.0.0.3', side: 'new', list: 'bl.lab.test' }), 1);
    assert.equal(
      await col.sample('mailprobe_dnsbl_listed', { ip: '127.0.0.3', side: 'new', list: 'refuse.lab.test' }),
      undefined,
      'a refusal is not a listing',
    );
    assert.equal(await col.sample('mailprobe_dnsbl_errors_total', { ip: '127.0.0.3', side: 'new', list: 'refuse.lab.test' }), 1);
    assert.equal(await col.sample('mailprobe_checks_total', { region: 'eu', probe: 'p-eu', type: 'dnsbl', result: 'dnsbl_refused' }), 1);
  });

  test('IPv6 server addresses are asked for as reversed nibbles', async () => {
    const before = w.auth.queries.length;
    const plan = worldPlan(w);
    const r = await runDnsbl({ ip: '2001:db8::25', side: 'new', list: 'bl.lab.test' }, dnsSettings(plan), makeCtx());
    assert.deepEqual(view(r), { ip: '2001:db8::25', side: 'new', list: 'bl.lab.test', ok: true, listed: false, answers: [] });
    assert.ok(w.auth.queries.slice(before).some((q) => q.name === '5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.lab.test'));
  });

  test('a list that does not answer is a failure (errors counted, listing unchanged)', async () => {
    const plan = worldPlan(w, { dns: { query_timeout: '300ms', lookup_resolver: w.auth.address } });
    w.auth.fault({ kind: 'drop' });
    try {
      const r = await runDnsbl({ ip: '127.0.0.3', side: 'new', list: 'bl.lab.test' }, dnsSettings(plan), makeCtx());
      assert.deepEqual(view(r), {
        ip: '127.0.0.3',
        side: 'new',
        list: 'bl.lab.test',
        ok: false,
        listed: false,
        answers: [],
        errorClass: 'timeout',
        code: 'dns_timeout',
      });
      await col.push(batchOf([r]));
      assert.equal(await col.sample('mailprobe_dnsbl_listed', { ip: '127.0.0.3', side: 'new', list: 'bl.lab.test' }), 1, 'last known value kept');
      assert.equal(await col.sample('mailprobe_dnsbl_errors_total', { ip: '127.0.0.3', side: 'new', list: 'bl.lab.test' }), 1);
    } finally {
      w.auth.fault(null);
    }
  });
});
