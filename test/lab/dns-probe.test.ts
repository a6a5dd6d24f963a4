/**
 * A whole probe (the runtime with the registry's DNS-side checks) against the lab's DNS world
 * and a real collector: every DNS-side metric of the catalogue (protocol/metrics.ts) appears with the right values.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createProbe } from '../../probe/runtime.js';
import { loadChecks, register } from '../../probe/checks/index.js';
import { dnsCheck } from '../../probe/checks/dns.js';
import type { DnsResult } from '../../protocol/results.js';
import { startDnsWorld } from '../../lab/dns/world.js';
import { startTestCollector } from '../support/collector.js';
import { tokenFor } from '../../bench/lib/plan.js';
import { worldPlan } from '../../bench/lib/dns-support.js';

test('a probe run against the lab produces every DNS-side metric with correct values', async () => {
  const w = await startDnsWorld({
    mtaStsId: 'lab-2026',
    tlsa: true,
    initial: { ttl: 4, serve: 'old' },
    // Lowered after the first round, so every cache first fetched the TTL of 4.
    timeline: [{ at: 3000, ttl: 2, label: 'lower TTL' }],
    dnsbl: [
      { zone: 'bl.lab.test', listed: { '127.0.0.3': ['127.0.0.2'] } },
      { zone: 'refuse.lab.test', refuse: true },
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-dns-probe-'));
  const base = worldPlan(w);
  const col = await startTestCollector(base);
  const plan = worldPlan(w, {
    probes: {
      // Everything (lab, probe, collector) shares one event loop here: generous timeouts.
      interval: '2s',
      window_interval: '2s',
      timeout: '2s',
      push: { collectors: [col.url], batch_max_age: '200ms' },
    },
  });
  // The registry's dns check, recording what it returned (to explain a failed assertion).
  const seen: DnsResult[] = [];
  const recording = register({
    ...dnsCheck,
    run: async (t, st, ctx) => {
      const out = await dnsCheck.run(t, st, ctx);
      seen.push(...(Array.isArray(out) ? out : [out]).filter((r): r is DnsResult => r.type === 'dns'));
      return out;
    },
  });
  const probe = createProbe({
    registry: { ...(await loadChecks()), dns: recording },
    plan,
    id: 'p-eu',
    region: 'eu',
    token: tokenFor('p-eu'),
    checks: ['dns', 'ttl', 'rdns', 'auth', 'dnsbl'],
    spoolDir: dir,
    random: () => 0,
    logger: pino({ level: 'silent' }),
  });
  try {
    w.auth.startTimeline();
    await probe.start();
    await sleep(6500);
    await probe.stop({ flushMs: 3000 });
    const l = { region: 'eu', probe: 'p-eu' };
    const honest = w.resolvers.honest.address;
    const auth = `auth:${w.auth.address}`;
    const m = (name: string, labels: Record<string, string>) => col.sample(name, labels);

    // dns
    for (const resolver of [honest, auth]) {
      assert.equal(await m('mailprobe_dns_answer_side', { ...l, resolver, name: 'mail.company.test', type: 'A', side: 'old' }), 1, resolver);
      assert.equal(await m('mailprobe_dns_answer_side', { ...l, resolver, name: 'company.test', type: 'MX', side: 'old' }), 1, resolver);
      assert.equal(await m('mailprobe_dns_answer_side', { ...l, resolver, name: 'mail.company.test', type: 'AAAA', side: 'none' }), 1, resolver);
      assert.ok(((await m('mailprobe_dns_lookup_duration_seconds_count', { ...l, resolver })) ?? 0) >= 6, resolver);
      assert.ok(((await m('mailprobe_dns_lookups_total', { ...l, resolver, result: 'success' })) ?? 0) >= 6, resolver);
    }
    const ttlA = await m('mailprobe_dns_ttl_seconds', { ...l, resolver: auth, name: 'mail.company.test', type: 'A' });
    assert.equal(ttlA, 2, 'the authoritative TTL after lowering');
    assert.equal(await m('mailprobe_dns_ttl_seconds', { ...l, resolver: auth, name: 'company.test', type: 'MX' }), 5);

    // ttl
    for (const r of Object.values(w.resolvers)) {
      const rl = { ...l, resolver: r.address, name: 'mail.company.test' };
      assert.equal(await m('mailprobe_dns_ttl_violation', rl), 0, `${r.address}: nothing changed, nothing violated`);
      assert.equal(await m('mailprobe_dns_resolver_stale_seconds', rl), 0);
    }
    assert.equal(await m('mailprobe_dns_ttl_extension_seconds', { ...l, resolver: w.resolvers.honest.address, name: 'mail.company.test' }), 0);
    // ignore reports TTL + 6 (10 on a fresh fetch, counting down); how much of it the probe saw
    // depends on when its queries landed: a loaded machine may fail the first ones.
    const ext = (await m('mailprobe_dns_ttl_extension_seconds', { ...l, resolver: w.resolvers.ignore.address, name: 'mail.company.test' })) ?? -1;
    const ignoreA = seen
      .filter((r) => r.resolver === w.resolvers.ignore.address && r.qtype === 'A')
      .map((r) => `${r.startedAt - w.auth.timelineStart}:${r.ok ? r.ttl : r.code}`);
    assert.ok(ext >= 1 && ext <= 6, `ignore extends the TTL by ${ext}; its A answers: ${ignoreA.join(' ')}`);
    const safe = await m('mailprobe_safe_to_switch_timestamp_seconds', { ...l, name: 'mail.company.test' });
    // First seen lowered within a round (2 s) of the step at 3 s, plus the 4 s that held before.
    assert.ok(safe !== undefined && safe > w.auth.timelineStart / 1000 + 7 && safe < w.auth.timelineStart / 1000 + 7 + 2.5, `safe to switch at ${safe}`);
    assert.equal(await m('mailprobe_safe_to_decommission', { ...l, name: 'mail.company.test' }), 0, 'the old IP is what everyone serves');

    // rdns
    for (const [ip, side] of [
      ['127.0.0.2', 'old'],
      ['127.0.0.3', 'new'],
    ] as const) {
      assert.equal(await m('mailprobe_ptr_matches_mail_host', { ip, side }), 1);
    }
    assert.equal(await m('mailprobe_fcrdns_ok', { ip: '127.0.0.2', side: 'old' }), 1);
    assert.equal(await m('mailprobe_fcrdns_ok', { ip: '127.0.0.3', side: 'new' }), 0, 'the mail host does not resolve to the new IP yet');

    // auth
    assert.equal(await m('mailprobe_spf_pass', { ip: '127.0.0.2', side: 'old' }), 1);
    assert.equal(await m('mailprobe_spf_pass', { ip: '127.0.0.3', side: 'new' }), 1);
    assert.equal(await m('mailprobe_dkim_key_present', { selector: 's2026' }), 1);
    assert.equal(await m('mailprobe_dmarc_present', { domain: 'company.test' }), 1);
    assert.equal(await m('mailprobe_mta_sts_ok', { domain: 'company.test' }), 1);
    assert.equal(await m('mailprobe_tlsa_present', { name: 'mail.company.test' }), 1);

    // dnsbl
    assert.equal(await m('mailprobe_dnsbl_listed', { ip: '127.0.0.3', side: 'new', list: 'bl.lab.test' }), 1);
    assert.equal(await m('mailprobe_dnsbl_listed', { ip: '127.0.0.2', side: 'old', list: 'bl.lab.test' }), 0);
    assert.ok(((await m('mailprobe_dnsbl_errors_total', { ip: '127.0.0.2', side: 'old', list: 'refuse.lab.test' })) ?? 0) >= 1);
    assert.equal(await m('mailprobe_dnsbl_listed', { ip: '127.0.0.2', side: 'old', list: 'refuse.lab.test' }), undefined);
  } finally {
    await probe.stop().catch(() => undefined);
    await col.close();
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
