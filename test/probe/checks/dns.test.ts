import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { authLabel, authoritativeServers, dnsCheck, dnsCheckSettings, dnsQueries, runDns, type DnsTarget } from '../../../probe/checks/dns.js';
import type { PlanConfig } from '../../../config/schema.js';
import type { DnsResult } from '../../../protocol/results.js';
import { isCheckResult } from '../../../probe/valid-result.js';
import { namedLabResolver, startDnsWorld, type DnsWorld } from '../../../lab/dns/world.js';
import { startTestCollector, type TestCollector } from '../../support/collector.js';
import { testPlan } from '../../../bench/lib/plan.js';
import { batchOf, makeCtx, worldPlan } from '../../../bench/lib/dns-support.js';

/** A dns target of the plan: its questions, and for the authoritative side the configured servers. */
function targetOf(t: { kind: 'resolver'; resolver: string; resolverName?: string } | { kind: 'authoritative' }, plan: PlanConfig): DnsTarget {
  const s = dnsCheckSettings(plan);
  const queries = dnsQueries(s);
  return t.kind === 'resolver'
    ? { ...t, resolverName: t.resolverName ?? t.resolver, queries }
    : { kind: 'authoritative', servers: s.authoritative.map(authLabel), queries };
}

/** The fields a test compares exactly (durations and start times vary). */
const view = (r: DnsResult) => ({
  resolver: r.resolver,
  authoritative: r.authoritative,
  name: r.name,
  qtype: r.qtype,
  ok: r.ok,
  transport: r.transport,
  rcode: r.rcode,
  answers: r.answers,
  ttl: r.ttl,
  side: r.side,
  ...(r.ok ? {} : { errorClass: r.errorClass, code: r.code }),
});

describe('dns check against the lab', () => {
  let w: DnsWorld;
  let col: TestCollector;
  before(async () => {
    w = await startDnsWorld({ initial: { ttl: 8, serve: 'old' } });
    col = await startTestCollector(worldPlan(w));
  });
  after(async () => {
    await col.close();
    await w.close();
  });

  const run = async (target: Parameters<typeof targetOf>[0], plan = worldPlan(w)) => {
    const out = await runDns(targetOf(target, plan), dnsCheckSettings(plan), makeCtx());
    for (const r of out) assert.ok(isCheckResult(r), `valid on the wire: ${JSON.stringify(r)}`);
    return out;
  };

  test('targets: one per resolver plus the authoritative servers', () => {
    const plan = worldPlan(w);
    assert.deepEqual(
      dnsCheck.targets(plan).map((t) => t.key),
      [...plan.probes.resolvers.map((r) => `resolver:${r.label}`), 'authoritative'],
    );
  });

  test("a named resolver: its results carry the plan's name, the collector's series the resolver_name label", async () => {
    const plan = worldPlan(w, { probes: { resolvers: [namedLabResolver(w, 'clamp'), w.resolvers.stale.address] } });
    const [named, plain] = dnsCheck.targets(plan);
    assert.deepEqual(named?.target, {
      kind: 'resolver',
      resolver: w.resolvers.clamp.address,
      resolverName: 'clamps TTL',
      queries: dnsQueries(dnsCheckSettings(plan)),
    });
    const out = [...(await run(named!.target, plan)), ...(await run(plain!.target, plan))];
    assert.deepEqual(
      [...new Set(out.map((r) => `${r.resolver}=${r.resolverName}`))],
      [`${w.resolvers.clamp.address}=clamps TTL`, `${w.resolvers.stale.address}=${w.resolvers.stale.address}`],
    );
    await col.push(batchOf(out));
    const labels = { region: 'eu', probe: 'p-eu', resolver: w.resolvers.clamp.address, resolver_name: 'clamps TTL', name: 'mail.company.test', type: 'A' };
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...labels, side: 'old' }), 1);
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...labels, resolver_name: w.resolvers.clamp.address, side: 'old' }), undefined);
  });

  test('a resolver: A old with the TTL, AAAA absent, MX following the A side; metrics at the collector', async () => {
    w.resolvers.honest.flush();
    const out = await run({ kind: 'resolver', resolver: w.resolvers.honest.address });
    const label = w.resolvers.honest.address;
    assert.deepEqual(out.map(view), [
      {
        resolver: label,
        authoritative: false,
        name: 'mail.company.test',
        qtype: 'A',
        ok: true,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: ['127.0.0.2'],
        ttl: 8,
        side: 'old',
      },
      {
        resolver: label,
        authoritative: false,
        name: 'mail.company.test',
        qtype: 'AAAA',
        ok: true,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: [],
        ttl: null,
        side: 'none',
      },
      {
        resolver: label,
        authoritative: false,
        name: 'company.test',
        qtype: 'MX',
        ok: true,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: ['10 mail.company.test'],
        ttl: 5,
        side: 'old',
      },
    ]);
    for (const r of out) assert.ok(r.durationSeconds > 0 && r.durationSeconds < 1);

    const res = await col.push(batchOf(out));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const l = { region: 'eu', probe: 'p-eu', resolver: label };
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...l, name: 'mail.company.test', type: 'A', side: 'old' }), 1);
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...l, name: 'mail.company.test', type: 'AAAA', side: 'none' }), 1);
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...l, name: 'company.test', type: 'MX', side: 'old' }), 1);
    assert.equal(await col.sample('mailprobe_dns_ttl_seconds', { ...l, name: 'mail.company.test', type: 'A' }), 8);
    assert.equal(await col.sample('mailprobe_dns_ttl_seconds', { ...l, name: 'mail.company.test', type: 'AAAA' }), undefined);
    assert.equal(await col.sample('mailprobe_dns_lookups_total', { ...l, result: 'success' }), 3);
    assert.equal(await col.sample('mailprobe_dns_lookup_duration_seconds_count', l), 3);
  });

  test('the authoritative servers, asked without recursion, labelled auth:<server>', async () => {
    const before = w.auth.queries.length;
    const out = await run({ kind: 'authoritative' });
    const label = `auth:${w.auth.address}`;
    assert.deepEqual(out.map(view), [
      {
        resolver: label,
        authoritative: true,
        name: 'mail.company.test',
        qtype: 'A',
        ok: true,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: ['127.0.0.2'],
        ttl: 8,
        side: 'old',
      },
      {
        resolver: label,
        authoritative: true,
        name: 'mail.company.test',
        qtype: 'AAAA',
        ok: true,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: [],
        ttl: null,
        side: 'none',
      },
      {
        resolver: label,
        authoritative: true,
        name: 'company.test',
        qtype: 'MX',
        ok: true,
        transport: 'udp',
        rcode: 'NOERROR',
        answers: ['10 mail.company.test'],
        ttl: 5,
        side: 'old',
      },
    ]);
    const mine = w.auth.queries.slice(before);
    assert.equal(mine.length, 3);
    assert.ok(mine.every((q) => q.rd === false));
  });

  test('during the overlap and after the switch: both, then new; the gauge moves to the current side', async () => {
    w.auth.set({ serve: 'both' });
    const both = await run({ kind: 'authoritative' });
    assert.deepEqual(both[0]?.answers, ['127.0.0.2', '127.0.0.3']);
    assert.equal(both[0]?.side, 'both');
    assert.equal(both[2]?.side, 'both');
    await col.push(batchOf(both));
    w.auth.set({ serve: 'new' });
    const neu = await run({ kind: 'authoritative' });
    assert.equal(neu[0]?.side, 'new');
    await col.push(batchOf(neu));
    const l = { region: 'eu', probe: 'p-eu', resolver: `auth:${w.auth.address}`, name: 'mail.company.test', type: 'A' };
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...l, side: 'new' }), 1);
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...l, side: 'both' }), undefined, 'the other sides are removed');
    w.auth.set(null);
  });

  test('an address outside the plan is other; a missing mail host is NXDOMAIN', async () => {
    const foreign = worldPlan(w, {
      cutover: {
        servers: [
          { ip: '127.0.0.8', side: 'old' },
          { ip: '127.0.0.9', side: 'new' },
        ],
      },
    });
    const out = await run({ kind: 'authoritative' }, foreign);
    assert.equal(out[0]?.side, 'other');
    assert.equal(out[2]?.side, 'other', 'MX follows A');
    const gone = worldPlan(w, { cutover: { mail_host: 'gone.company.test' } });
    const nx = await run({ kind: 'authoritative' }, gone);
    assert.deepEqual(view(nx[0] as DnsResult), {
      resolver: `auth:${w.auth.address}`,
      authoritative: true,
      name: 'gone.company.test',
      qtype: 'A',
      ok: false,
      transport: 'udp',
      rcode: 'NXDOMAIN',
      answers: [],
      ttl: null,
      side: 'none',
      errorClass: 'nxdomain',
      code: 'dns_nxdomain',
    });
    assert.equal(nx[2]?.side, 'other', 'MX does not name the mail host');
  });

  test('failures are results: SERVFAIL, timeout, garbage, upstream down; metrics count them', async () => {
    const plan = worldPlan(w, {
      dns: { query_timeout: '300ms', lookup_resolver: w.resolvers.honest.address, ttl_allowance: '1s', mta_sts_url: 'http://127.0.0.1:1/' },
    });
    const label = `auth:${w.auth.address}`;
    const cases = [
      [{ kind: 'servfail' }, 'servfail', 'dns_servfail', 'SERVFAIL'],
      [{ kind: 'drop' }, 'timeout', 'dns_timeout', '-'],
      [{ kind: 'garbage' }, 'bad_response', 'dns_malformed', '-'],
      [{ kind: 'refused' }, 'refused', 'dns_refused', 'REFUSED'],
    ] as const;
    for (const [fault, errorClass, code, rcode] of cases) {
      w.auth.fault(fault);
      try {
        const out = await run({ kind: 'authoritative' }, plan);
        assert.equal(out.length, 3);
        for (const r of out) {
          assert.equal(r.ok, false);
          assert.equal(r.errorClass, errorClass, `${fault.kind}: ${r.message ?? ''}`);
          assert.equal(r.code, code);
          assert.equal(r.rcode, rcode);
          assert.equal(r.side, 'error');
          assert.equal(r.resolver, label);
          assert.ok(r.message && r.message.length > 0);
        }
        await col.push(batchOf(out));
      } finally {
        w.auth.fault(null);
      }
    }
    const l = { region: 'eu', probe: 'p-eu', resolver: label };
    for (const [, errorClass] of cases) assert.equal(await col.sample('mailprobe_dns_lookups_total', { ...l, result: errorClass }), 3, errorClass);
    assert.equal(await col.sample('mailprobe_dns_answer_side', { ...l, name: 'mail.company.test', type: 'A', side: 'error' }), 1);

    w.resolvers.honest.flush();
    w.resolvers.honest.upstreamDown(true);
    try {
      const out = await run({ kind: 'resolver', resolver: w.resolvers.honest.address }, plan);
      assert.deepEqual(
        out.map((r) => [r.ok, r.errorClass, r.rcode]),
        [
          [false, 'servfail', 'SERVFAIL'],
          [false, 'servfail', 'SERVFAIL'],
          [false, 'servfail', 'SERVFAIL'],
        ],
      );
    } finally {
      w.resolvers.honest.upstreamDown(false);
    }
  });

  test('the runtime signal aborts a slow resolver', async () => {
    w.auth.fault({ kind: 'drop' });
    try {
      const plan = worldPlan(w, { dns: { query_timeout: '5s' } });
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('check timeout')), 100);
      const t0 = Date.now();
      const out = await runDns(targetOf({ kind: 'authoritative' }, plan), dnsCheckSettings(plan), makeCtx({ signal: ac.signal }));
      assert.ok(Date.now() - t0 < 2000);
      assert.deepEqual(
        out.map((r) => [r.ok, r.errorClass, r.code]),
        [
          [false, 'timeout', 'dns_aborted'],
          [false, 'timeout', 'dns_aborted'],
          [false, 'timeout', 'dns_aborted'],
        ],
      );
    } finally {
      w.auth.fault(null);
    }
  });

  test('an authoritative server name that does not resolve yields failed auth:<name> results every run, beside the servers that answer', async () => {
    const plan = worldPlan(w, { probes: { authoritative: ['ns-gone.company.test', w.auth.address] } });
    const target = dnsCheck.targets(plan).find((t) => t.key === 'authoritative');
    assert.deepEqual(target?.target, {
      kind: 'authoritative',
      servers: ['auth:ns-gone.company.test', `auth:${w.auth.address}`],
      queries: dnsQueries(dnsCheckSettings(plan)),
    });
    const out = await run({ kind: 'authoritative' }, plan);
    assert.deepEqual(
      out.map((r) => [r.resolver, r.qtype, r.ok, r.errorClass, r.code, r.phase, r.side]),
      [
        ['auth:ns-gone.company.test', 'A', false, 'nxdomain', 'dns_auth_unresolved', 'discover', 'error'],
        ['auth:ns-gone.company.test', 'AAAA', false, 'nxdomain', 'dns_auth_unresolved', 'discover', 'error'],
        ['auth:ns-gone.company.test', 'MX', false, 'nxdomain', 'dns_auth_unresolved', 'discover', 'error'],
        [`auth:${w.auth.address}`, 'A', true, undefined, undefined, undefined, 'old'],
        [`auth:${w.auth.address}`, 'AAAA', true, undefined, undefined, undefined, 'none'],
        [`auth:${w.auth.address}`, 'MX', true, undefined, undefined, undefined, 'old'],
      ],
    );
    assert.match(out[0]?.message ?? '', /ns-gone\.company\.test has no A or AAAA record at /);
    // Counted at the collector like any failed lookup: graphed and alertable.
    const before = (await col.sample('mailprobe_dns_lookups_total', { resolver: 'auth:ns-gone.company.test', result: 'nxdomain' })) ?? 0;
    await col.push(batchOf(out));
    assert.equal(await col.sample('mailprobe_dns_lookups_total', { resolver: 'auth:ns-gone.company.test', result: 'nxdomain' }), before + 3);
    assert.equal(
      await col.sample('mailprobe_dns_answer_side', { resolver: 'auth:ns-gone.company.test', name: 'mail.company.test', type: 'A', side: 'error' }),
      1,
    );
  });

  test('authoritative servers found from the NS records when the plan names none', async () => {
    const plan = testPlan({ probes: { resolvers: [w.resolvers.honest.address] } });
    const servers = await authoritativeServers([], dnsCheckSettings(plan));
    assert.deepEqual(servers, [{ label: 'auth:ns1.company.test', server: { host: '127.0.0.1', port: 53 } }]);
    const none = testPlan({ cutover: { domain: 'other.test', mail_host: 'mail.other.test' }, probes: { resolvers: [w.resolvers.honest.address] } });
    const out = await runDns(targetOf({ kind: 'authoritative' }, none), dnsCheckSettings(none), makeCtx());
    assert.deepEqual(
      out.map((r) => [r.resolver, r.ok, r.code]),
      [
        ['auth:none', false, 'dns_servfail'],
        ['auth:none', false, 'dns_servfail'],
        ['auth:none', false, 'dns_servfail'],
      ],
    );
  });
});
