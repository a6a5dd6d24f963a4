import { setTimeout as sleep } from 'node:timers/promises';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { dnsCheckSettings, dnsQueries, runDns } from '../../../probe/checks/dns.js';
import { runTtl, ttlCheck, ttlSettings, type TtlSettings } from '../../../probe/checks/ttl.js';
import type { DnsResult, TtlResult } from '../../../protocol/results.js';
import { isCheckResult } from '../../../probe/valid-result.js';
import { startDnsWorld } from '../../../lab/dns/world.js';
import { startTestCollector } from '../../support/collector.js';
import { testPlan } from '../../../bench/lib/plan.js';
import { batchOf, makeCtx, MemoryHistory, worldPlan } from '../../../bench/lib/dns-support.js';
import { startUnbound } from '../../../bench/lib/unbound.js';

const S = 1000;
const plan = testPlan({ probes: { decommission_quiet: '30s' } });
const settings: TtlSettings = { allowanceMs: 2 * S, lookbackMs: 36_000 * S, decommissionQuietMs: 30 * S, overlapMs: 6 * S, servers: plan.cutover.servers };

/** A dns result at `t` seconds (from an epoch), answering `ip` with `ttl`, from `resolver` (auth:* = authoritative). */
function obs(t: number, resolver: string, ip: string | null, ttl: number | null): DnsResult {
  return {
    type: 'dns',
    startedAt: 1_000_000 * S + t * S,
    durationSeconds: 0,
    ok: true,
    resolver,
    authoritative: resolver.startsWith('auth:'),
    name: 'mail.company.test',
    qtype: 'A',
    transport: 'udp',
    rcode: 'NOERROR',
    answers: ip ? [ip] : [],
    ttl,
    side: ip === '127.0.0.2' ? 'old' : ip === '127.0.0.3' ? 'new' : 'none',
  };
}

async function analyse(results: DnsResult[], at: number, state = new Map<string, unknown>(), history = new MemoryHistory()): Promise<Map<string, TtlResult>> {
  history.add(results);
  const ctx = makeCtx({ history, state, now: () => 1_000_000 * S + at * S });
  const out = await runTtl({ name: 'mail.company.test', qtype: 'A', resolvers: [] }, settings, ctx);
  for (const r of out) assert.ok(isCheckResult(r), JSON.stringify(r));
  return new Map(out.map((r) => [r.resolver, r]));
}

const OLD = '127.0.0.2';
const NEW = '127.0.0.3';

describe('ttl analysis (derived from dns results over time)', () => {
  test('the TTL that held counts from the latest possible change; honest until then, stale after', async () => {
    // Authoritative: old (TTL 60) every 10 s up to 100, new from 110.
    const auth = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
      .map((t) => obs(t, 'auth:ns1', OLD, 60))
      .concat([110, 120].map((t) => obs(t, 'auth:ns1', NEW, 60)));
    // The change may have happened as late as 110, so old answers are honest until 170 (+2 s allowance).
    const r = await analyse([...auth, obs(169, 'honest', OLD, 1), obs(171.5, 'edge', OLD, 0), obs(175, 'late', OLD, 0), obs(175, 'switched', NEW, 55)], 180);
    assert.deepEqual(
      [...r.values()].map((x) => [x.resolver, x.violation, x.staleSeconds]),
      [
        ['edge', false, 0],
        ['honest', false, 0],
        ['late', true, 5],
        ['switched', false, 0],
      ],
    );
  });

  test('tested: only a resolver that answered after an old answer had run out is known to honour the TTL', async () => {
    // Old (TTL 60) until 100, new from 110: the old answer may be kept until 170 (+2 s allowance).
    const auth = [0, 50, 100].map((t) => obs(t, 'auth:ns1', OLD, 60)).concat([110, 160, 200].map((t) => obs(t, 'auth:ns1', NEW, 60)));
    const r = await analyse(
      [
        ...auth,
        obs(20, 'before-change', OLD, 40),
        obs(150, 'within-ttl', OLD, 20),
        obs(150, 'within-ttl-new', NEW, 60),
        obs(180, 'after-expiry', NEW, 50),
        obs(185, 'violator', OLD, 0),
      ],
      190,
    );
    assert.deepEqual(
      [...r.values()].map((x) => [x.resolver, x.tested, x.violation]),
      [
        ['after-expiry', true, false],
        ['before-change', false, false],
        ['violator', true, true],
        ['within-ttl', false, false],
        ['within-ttl-new', false, false],
      ],
    );
  });

  test('a gap in authoritative observations widens the honest window (never flag an honest resolver)', async () => {
    // Old seen last at 0, new first seen at 100: the change may have been at 100.
    const r = await analyse([obs(0, 'auth:ns1', OLD, 10), obs(100, 'auth:ns1', NEW, 10), obs(109, 'r1', OLD, 1), obs(113, 'r2', OLD, 0)], 120);
    assert.equal(r.get('r1')?.violation, false);
    assert.equal(r.get('r2')?.violation, true);
    assert.equal(r.get('r2')?.staleSeconds, 3);
  });

  test('lowered TTL: safe to switch at first lowered sighting + the TTL before; caches may keep the old TTL that long', async () => {
    // TTL 3600 until 1000, lowered to 60 (first seen at 1000), switched at 5000.
    const auth = [
      obs(0, 'auth:ns1', OLD, 3600),
      obs(500, 'auth:ns1', OLD, 3600),
      obs(1000, 'auth:ns1', OLD, 60),
      obs(2000, 'auth:ns1', OLD, 60),
      obs(5000, 'auth:ns1', NEW, 60),
    ];
    // A resolver that fetched at 999 with TTL 3600 may answer old until 4599 — honest at 4500 even though the switch came later.
    const r = await analyse([...auth, obs(4500, 'r1', OLD, 99), obs(5050, 'r2', OLD, 10), obs(5063, 'r3', OLD, 0)], 5100);
    const x = r.get('r1');
    assert.equal(x?.safeToSwitchAt, 1_000_000 * S + 1000 * S + 3600 * S);
    assert.equal(x?.violation, false);
    assert.equal(r.get('r2')?.violation, false);
    assert.equal(r.get('r3')?.violation, true);
    assert.equal(r.get('r3')?.staleSeconds, 3);
  });

  test('extension: a TTL above the highest authoritative TTL for that answer', async () => {
    const state = new Map<string, unknown>();
    const history = new MemoryHistory();
    const early = await analyse(
      [obs(0, 'auth:ns1', OLD, 60), obs(1, 'clamp', OLD, 300), obs(2, 'honest', OLD, 59), obs(3, 'unknown-set', '192.0.2.1', 9999)],
      4,
      state,
      history,
    );
    assert.equal(early.get('clamp')?.extensionSeconds, 0, 'judged only once the next authoritative observation is in');
    const r = await analyse([obs(5, 'auth:ns1', OLD, 60)], 6, state, history);
    assert.equal(r.get('clamp')?.extensionSeconds, 240);
    assert.equal(r.get('honest')?.extensionSeconds, 0);
    assert.equal(r.get('unknown-set')?.extensionSeconds, 0, 'no authoritative TTL to compare with');
  });

  test('a TTL raised between two authoritative observations is not an extension', async () => {
    const r = await analyse([obs(0, 'auth:ns1', OLD, 60), obs(10, 'r1', OLD, 3600), obs(20, 'auth:ns1', OLD, 3600)], 21);
    assert.equal(r.get('r1')?.extensionSeconds, 0);
  });

  test('incremental: state carries over, results are not counted twice, a rollback is not stale', async () => {
    const state = new Map<string, unknown>();
    const history = new MemoryHistory();
    await analyse([obs(0, 'auth:ns1', OLD, 5), obs(1, 'r1', OLD, 5)], 2, state, history);
    // Switch at 10, back to old at 20 (rollback): old answers after 20 are current again.
    let r = await analyse([obs(10, 'auth:ns1', NEW, 5), obs(20, 'auth:ns1', OLD, 5), obs(21, 'r1', OLD, 5)], 22, state, history);
    assert.equal(r.get('r1')?.violation, false);
    r = await analyse([obs(30, 'auth:ns1', OLD, 5), obs(30, 'r1', NEW, 5)], 31, state, history);
    // NEW at 30 is the set of the epoch 10..20, honest until 20 + 5 s: 5 s stale, minus nothing (allowance 2 s exceeded).
    assert.equal(r.get('r1')?.violation, true);
    assert.equal(r.get('r1')?.staleSeconds, 5);
    const again = await analyse([], 32, state, history);
    assert.equal(again.get('r1')?.staleSeconds, 5, 'the same results read again change nothing');
  });

  test('safe to decommission: no old IP anywhere for the quiet time', async () => {
    const state = new Map<string, unknown>();
    const history = new MemoryHistory();
    let r = await analyse([obs(0, 'auth:ns1', NEW, 5), obs(0, 'r1', OLD, 5), obs(10, 'r1', NEW, 5)], 20, state, history);
    assert.equal(r.get('r1')?.safeToDecommission, false);
    r = await analyse([obs(31, 'r1', NEW, 5)], 31, state, history);
    assert.equal(r.get('r1')?.safeToDecommission, true, '31 s since the last old answer ≥ 30 s');
  });

  test('targets: the mail host, A for IPv4 plans', () => {
    assert.deepEqual(
      ttlCheck.targets(plan).map((t) => t.target),
      [{ name: 'mail.company.test', qtype: 'A', resolvers: ['system'] }],
    );
    assert.deepEqual(ttlSettings(plan), {
      allowanceMs: 2000,
      lookbackMs: 172_800_000,
      decommissionQuietMs: 30_000,
      overlapMs: 6000,
      servers: plan.cutover.servers,
    });
  });
});

test('live: lab resolvers and a real unbound through a compressed cutover — violators flagged, honest ones and unbound not', async () => {
  const w = await startDnsWorld({
    initial: { ttl: 4, serve: 'old' },
    timeline: [
      { at: 2000, ttl: 2, label: 'lower TTL' },
      { at: 6500, serve: 'new', label: 'switch' },
      { at: 10500, ttl: 6, label: 'raise TTL' },
    ],
    ignoreExtraSeconds: 6,
    clampMinTtl: 6,
    staleSeconds: 30,
  });
  const unbound = await startUnbound({
    upstream: { host: w.auth.host, port: w.auth.port },
    zones: ['company.test', '0.0.127.in-addr.arpa'],
    probeName: 'company.test',
  }).catch(async (e: unknown) => {
    await w.close();
    throw e;
  });
  const base = worldPlan(w, { probes: { decommission_quiet: '2s' } });
  const plan = worldPlan(w, { probes: { decommission_quiet: '2s', resolvers: [...base.probes.resolvers.map((r) => r.label), unbound.address] } });
  const col = await startTestCollector(plan);
  try {
    const s = dnsCheckSettings(plan);
    const queries = dnsQueries(s);
    const history = new MemoryHistory();
    const state = new Map<string, unknown>();
    const ctx = makeCtx({ history, state });
    const [ttlTarget] = ttlCheck.targets(plan);
    assert.ok(ttlTarget);
    const round = async () => {
      const outs = await Promise.all([
        ...plan.probes.resolvers.map((resolver) => runDns({ kind: 'resolver', resolver: resolver.label, queries }, s, ctx)),
        runDns({ kind: 'authoritative', servers: [], queries }, s, ctx),
      ]);
      for (const o of outs) history.add(o);
      return outs.flat();
    };
    let ttl: TtlResult[] = [];
    w.auth.startTimeline();
    const t0 = w.auth.timelineStart;
    let primed = false;
    let staleDown = false;
    let staleUp = false;
    while (Date.now() - t0 < 12_000) {
      const el = Date.now() - t0;
      if (!primed && el >= 5600) {
        // Every lab cache fetches the old answer (TTL 2) shortly before the switch (a margin for slow rounds on a loaded machine).
        for (const r of Object.values(w.resolvers)) r.flush();
        primed = true;
      }
      await round();
      if (primed && !staleDown) {
        w.resolvers.stale.upstreamDown(true);
        staleDown = true;
      }
      if (!staleUp && el >= 11_500) {
        w.resolvers.stale.upstreamDown(false);
        staleUp = true;
      }
      // The analysis runs incrementally, as the runtime would run it.
      ttl = await runTtl(ttlTarget.target, ttlTarget.settings, ctx);
      await sleep(Math.max(0, 400 - ((Date.now() - t0) % 400)));
    }
    const by = new Map(ttl.map((r) => [r.resolver, r]));
    if (process.env.MAILPROBE_TTL_DEBUG) {
      for (const r of history.since('dns', 0).filter((x) => x.qtype === 'A')) console.log(r.startedAt - t0, r.resolver, r.ok ? `${r.side}/${r.ttl}` : r.code);
      console.log(JSON.stringify(ttl, null, 1));
    }
    const label = (r: { address: string }) => r.address;
    const dns = history.since('dns', 0).filter((r) => r.qtype === 'A' && r.ok);
    const authA = dns.filter((r) => r.authoritative);
    const firstNew = authA.find((r) => r.side === 'new');
    assert.ok(firstNew, 'the switch was seen at the authoritative server');
    const firstNewAt = firstNew.startedAt + firstNew.durationSeconds * 1000;
    const firstLowered = authA.find((r) => r.ttl === 2);
    assert.ok(firstLowered);

    // Honest resolvers: the lab's honest one and unbound.
    for (const r of [label(w.resolvers.honest), unbound.address]) {
      assert.deepEqual([by.get(r)?.violation, by.get(r)?.staleSeconds, by.get(r)?.extensionSeconds], [false, 0, 0], `${r} is honest`);
    }
    // unbound switched, and within the TTL that held (2 s) of the first authoritative sighting
    // (+ the allowance): every answer after that is new.
    const ub = dns.filter((r) => r.resolver === unbound.address);
    const ubFirstNew = ub.find((r) => r.side === 'new');
    assert.ok(ubFirstNew, 'unbound switched');
    const ubLate = ub.filter((r) => r.startedAt > firstNewAt + 2000 + 1000);
    assert.ok(ubLate.length > 0 && ubLate.every((r) => r.side === 'new'), `unbound after the TTL: ${ub.map((r) => `${r.startedAt - t0}:${r.side}`).join(' ')}`);
    assert.ok(
      ub.filter((r) => r.startedAt > ubFirstNew.startedAt).every((r) => r.side === 'new'),
      'and stayed switched',
    );

    // Violators: ignore (+6 s), clamp (min 6 s), stale (upstream down, serves expired data).
    for (const [r, minStale] of [
      [label(w.resolvers.ignore), 1],
      [label(w.resolvers.clamp), 0.2],
      [label(w.resolvers.stale), 0.5],
    ] as const) {
      const x = by.get(r);
      const seenBy = dns.filter((d) => d.resolver === r).map((d) => `${d.startedAt - t0}:${d.side}/${d.ttl}`);
      assert.equal(x?.violation, true, `${r} (${JSON.stringify(x)}) violates; change seen at ${firstNewAt - t0}; answers ${seenBy.join(' ')}`);
      assert.ok((x?.staleSeconds ?? 0) > minStale && (x?.staleSeconds ?? 0) < 6, `${r} stale ${x?.staleSeconds}`);
    }
    // Extensions: ignore reports TTL + 6, clamp at least 5, stale 30 while serving stale data.
    assert.ok((by.get(label(w.resolvers.ignore))?.extensionSeconds ?? 0) >= 3);
    assert.ok((by.get(label(w.resolvers.clamp))?.extensionSeconds ?? 0) >= 1);
    assert.equal(by.get(label(w.resolvers.stale))?.extensionSeconds, 26, 'reported 30 where the authoritative TTL was at most 4');

    // Figures.
    const safe = Math.round(firstLowered.startedAt + firstLowered.durationSeconds * 1000 + 4000);
    for (const r of ttl) {
      assert.equal(r.safeToSwitchAt, safe, 'first lowered TTL seen + the 4 s before');
      assert.equal(r.safeToDecommission, false, 'ignore still serves the old IP');
    }

    // The metrics at a real collector.
    const res = await col.push(batchOf(ttl));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const l = { region: 'eu', probe: 'p-eu', name: 'mail.company.test' };
    assert.equal(await col.sample('mailprobe_dns_ttl_violation', { ...l, resolver: unbound.address }), 0);
    assert.equal(await col.sample('mailprobe_dns_ttl_violation', { ...l, resolver: label(w.resolvers.honest) }), 0);
    assert.equal(await col.sample('mailprobe_dns_ttl_violation', { ...l, resolver: label(w.resolvers.ignore) }), 1);
    assert.equal(await col.sample('mailprobe_dns_ttl_tested', { ...l, resolver: label(w.resolvers.ignore) }), 1);
    assert.equal(await col.sample('mailprobe_dns_ttl_tested', { ...l, resolver: label(w.resolvers.honest) }), 1);
    assert.equal(
      await col.sample('mailprobe_dns_resolver_stale_seconds', { ...l, resolver: label(w.resolvers.ignore) }),
      by.get(label(w.resolvers.ignore))?.staleSeconds,
    );
    assert.equal(await col.sample('mailprobe_dns_ttl_extension_seconds', { ...l, resolver: label(w.resolvers.stale) }), 26);
    assert.equal(await col.sample('mailprobe_safe_to_switch_timestamp_seconds', l), safe / 1000);
    assert.equal(await col.sample('mailprobe_safe_to_decommission', l), 0);
  } finally {
    await col.close();
    await unbound.close();
    await w.close();
  }
});
