/**
 * The lab view's figures from a registry fed known results through the collector's own code:
 * round trips per IP with delivered / failed / lost, session and round-trip quantiles, the
 * TTL-honour figure counting only tested resolvers, resolver and server names, and the reasons
 * given for safe-to-switch and safe-to-decommission; the final summary reads as one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { resultOps } from '../../collector/samples.js';
import { createSelfMetrics } from '../../collector/self-metrics.js';
import { SeriesStore } from '../../collector/store/series-store.js';
import type { CheckResult } from '../../protocol/results.js';
import { bucketQuantile, render, snapshot, summarize, type ViewState } from '../../lab/view.js';

const OLD = '127.0.0.2';
const NEW = '127.0.0.3';
const HOST = 'mail.company.test';
const T = 1_800_000_000_000;

function registryWith(results: { probe: string; region: string; r: CheckResult }[]): { registry: Registry; store: SeriesStore } {
  const registry = new Registry();
  createSelfMetrics(registry, { start: T, end: T + 3_600_000 }, () => T, [
    { ip: OLD, side: 'old', name: 'provider-a' },
    { ip: NEW, side: 'new' },
  ]);
  const store = new SeriesStore();
  for (const { probe, region, r } of results) store.apply(resultOps({ id: probe, region }, r));
  return { registry, store };
}

const snapshotOf = ({ registry, store }: { registry: Registry; store: SeriesStore }) => snapshot(registry, store);

const dns = (resolver: string, resolverName: string, side: 'old' | 'new'): CheckResult => ({
  type: 'dns',
  startedAt: T,
  durationSeconds: 0.01,
  ok: true,
  resolver,
  resolverName,
  authoritative: false,
  name: HOST,
  qtype: 'A',
  transport: 'udp',
  rcode: 'NOERROR',
  answers: [side === 'old' ? OLD : NEW],
  ttl: 5,
  side,
});
const ttl = (resolver: string, resolverName: string, tested: boolean, violation: boolean, safe: { at: number | null; decommission: boolean }): CheckResult => ({
  type: 'ttl',
  startedAt: T,
  durationSeconds: 0,
  ok: true,
  resolver,
  resolverName,
  name: HOST,
  staleSeconds: violation ? 7 : 0,
  violation,
  tested,
  extensionSeconds: 0,
  safeToSwitchAt: safe.at,
  safeToDecommission: safe.decommission,
});
const smtp = (ip: string, side: 'old' | 'new', seconds: number, ok = true): CheckResult =>
  ok
    ? { type: 'smtp', startedAt: T, durationSeconds: seconds, ok: true, ip, side, port: 25, mode: 'rcpt', phases: { connect: seconds / 2, rcpt: seconds / 2 } }
    : {
        type: 'smtp',
        startedAt: T,
        durationSeconds: 0.01,
        ok: false,
        phase: 'connect',
        errorClass: 'connect_refused',
        code: 'ECONNREFUSED',
        message: 'refused',
        ip,
        side,
        port: 25,
        mode: 'rcpt',
        phases: {},
      };
const rt = (ip: string, side: 'old' | 'new', outcome: 'delivered' | 'failed' | 'lost', latency = 1): CheckResult => ({
  type: 'roundtrip',
  startedAt: T,
  durationSeconds: latency,
  viaIp: ip,
  side,
  messageId: `m-${Math.random()}`,
  sameClock: true,
  ...(outcome === 'delivered'
    ? { ok: true, delivered: true, latencySeconds: latency }
    : outcome === 'lost'
      ? { ok: false, delivered: false, phase: 'wait', errorClass: 'lost', code: 'RT_LOST', message: 'not arrived' }
      : { ok: false, delivered: false, phase: 'connect', errorClass: 'connect_refused', code: 'ECONNREFUSED', message: 'refused' }),
});

const placed = (ip: string, side: 'old' | 'new', placement: 'inbox' | 'spam' | 'lost'): CheckResult => ({
  type: 'inbox',
  startedAt: T,
  durationSeconds: 2,
  receiver: 'own',
  viaIp: ip,
  side,
  messageId: `ib-${Math.random()}`,
  placement,
  ...(placement === 'lost'
    ? { ok: false, phase: 'wait', errorClass: 'lost', code: 'inbox_lost', message: 'not found' }
    : { ok: true, folder: placement === 'spam' ? 'Junk' : 'INBOX', latencySeconds: 1 }),
});

const state = (over: Partial<ViewState> & Pick<ViewState, 'figures'>): ViewState => ({
  title: 'lab',
  now: T,
  startedAt: T - 60_000,
  endsAt: T + 60_000,
  windowStart: T - 30_000,
  windowEnd: T + 30_000,
  serving: 'new',
  ttl: 4,
  lastEvent: undefined,
  nextEvent: undefined,
  alerts: [],
  collectorUrl: 'http://127.0.0.1:9464',
  ...over,
});

test('bucketQuantile interpolates within the bucket like histogram_quantile', () => {
  const b = new Map([
    [0.1, 0],
    [0.5, 10],
    [1, 20],
    [Infinity, 20],
  ]);
  assert.equal(bucketQuantile(0.5, b), 0.5);
  assert.equal(bucketQuantile(0.25, b), 0.1 + 0.4 * 0.5);
  assert.equal(bucketQuantile(0.95, b), 0.5 + 0.5 * 0.9);
  assert.equal(
    bucketQuantile(
      0.5,
      new Map([
        [1, 0],
        [Infinity, 0],
      ]),
    ),
    undefined,
  );
  assert.equal(
    bucketQuantile(
      0.99,
      new Map([
        [1, 1],
        [Infinity, 4],
      ]),
    ),
    1,
    'in the +Inf bucket: the highest finite bound',
  );
});

test('figures: per IP sessions and round trips (failed ones too), names, TTL honour over tested resolvers only, the decisions with their reason', async () => {
  const safe = { at: T - 10_000, decommission: false };
  const results = [
    { probe: 'lab-eu', region: 'eu', r: dns('127.0.0.1:5301', 'honest', 'new') },
    { probe: 'lab-eu', region: 'eu', r: ttl('127.0.0.1:5301', 'honest', true, false, safe) },
    { probe: 'lab-us', region: 'us', r: dns('127.0.0.1:5301', 'honest', 'new') },
    { probe: 'lab-us', region: 'us', r: ttl('127.0.0.1:5301', 'honest', true, false, safe) },
    { probe: 'lab-us', region: 'us', r: dns('127.0.0.1:5302', 'ignores TTL', 'old') },
    { probe: 'lab-us', region: 'us', r: ttl('127.0.0.1:5302', 'ignores TTL', true, true, safe) },
    { probe: 'lab-us', region: 'us', r: dns('127.0.0.1:5303', 'serve-stale', 'new') },
    { probe: 'lab-us', region: 'us', r: ttl('127.0.0.1:5303', 'serve-stale', false, false, safe) },
    // Old: 3 sessions of 0.3 s and 1 refused; 2 round trips delivered, 3 failed after it was turned off, 1 lost.
    ...[0.3, 0.3, 0.3].map((s) => ({ probe: 'lab-eu', region: 'eu', r: smtp(OLD, 'old', s) })),
    { probe: 'lab-eu', region: 'eu', r: smtp(OLD, 'old', 0, false) },
    ...(['delivered', 'delivered', 'failed', 'failed', 'failed', 'lost'] as const).map((o) => ({ probe: 'lab-eu', region: 'eu', r: rt(OLD, 'old', o, 3) })),
    // New: sessions of 0.03 s, round trips of 1.5 s.
    ...[0.03, 0.03].map((s) => ({ probe: 'lab-us', region: 'us', r: smtp(NEW, 'new', s) })),
    ...[1.5, 1.5].map((l) => ({ probe: 'lab-us', region: 'us', r: rt(NEW, 'new', 'delivered', l) })),
    // The log follower beside the old MTA: a partner network still delivers, its last session 20 s ago.
    {
      probe: 'lab-mta-old',
      region: 'mta',
      r: {
        type: 'mta' as const,
        startedAt: T,
        durationSeconds: 0,
        ok: true,
        ips: [
          {
            ip: OLD,
            side: 'old' as const,
            sessions: [
              { net: '198.51.100.0/24', count: 5 },
              { net: 'other', count: 2 },
            ],
            messages: [],
            lastSessionAt: T - 20_000,
            quiet: false,
          },
        ],
        lines: 9,
        unknownLines: 0,
      },
    },
    // Inbox placement: the old IP's in the inbox; the new IP's twice in spam, once in the inbox, once lost.
    ...(['inbox', 'inbox'] as const).map((pl) => ({ probe: 'lab-eu', region: 'eu', r: placed(OLD, 'old', pl) })),
    ...(['spam', 'spam', 'inbox', 'lost'] as const).map((pl) => ({ probe: 'lab-us', region: 'us', r: placed(NEW, 'new', pl) })),
  ];
  const f = summarize(undefined, await snapshotOf(registryWith(results)));

  assert.deepEqual(f.regions, [
    { region: 'eu', resolvers: [{ name: 'honest', side: 'new', tested: true, violation: false }], ttl: { honoured: 1, tested: 1, unknown: 0 } },
    {
      region: 'us',
      resolvers: [
        { name: 'honest', side: 'new', tested: true, violation: false },
        { name: 'ignores TTL', side: 'old', tested: true, violation: true },
        { name: 'serve-stale', side: 'new', tested: false, violation: false },
      ],
      ttl: { honoured: 1, tested: 2, unknown: 1 },
    },
  ]);
  assert.deepEqual(f.ttl, { honoured: 2, tested: 3, unknown: 1 });
  const [old, neu] = f.ips;
  assert.deepEqual(
    { ...old, p50: undefined, p95: undefined, roundtrip: { ...old?.roundtrip, p50: undefined, p95: undefined }, inbox: undefined },
    {
      ip: OLD,
      side: 'old',
      name: 'provider-a',
      checks: 4,
      ok: 3,
      lastError: 'connect_refused',
      p50: undefined,
      p95: undefined,
      roundtrip: { delivered: 2, failed: 3, lost: 1, p50: undefined, p95: undefined },
      inbox: undefined,
    },
  );
  assert.deepEqual(old?.inbox, { inbox: 2, spam: 0, other: 0, lost: 0, failed: 0 });
  assert.deepEqual(neu?.inbox, { inbox: 1, spam: 2, other: 0, lost: 1, failed: 0 });
  // 0.3 s sessions fall in the (0.25, 0.5] bucket: p50 interpolates to 0.25 + 0.25 × 1.5/3 (the refused one has no phases, so no session).
  assert.ok(Math.abs((old?.p50 ?? 0) - (0.25 + (0.25 * 1.5) / 3)) < 1e-9, `p50 ${old?.p50}`);
  assert.ok((old?.p95 ?? 0) > 0.25 && (old?.p95 ?? 0) <= 0.5);
  assert.ok((old?.roundtrip.p50 ?? 0) > 2 && (old?.roundtrip.p50 ?? 0) <= 5, `round trip p50 ${old?.roundtrip.p50}`);
  assert.equal(neu?.name, NEW, 'an unnamed server shows its IP');
  assert.deepEqual([neu?.checks, neu?.ok, neu?.roundtrip.delivered, neu?.roundtrip.failed, neu?.roundtrip.lost], [2, 2, 2, 0, 0]);
  assert.ok((neu?.p95 ?? 0) > 0.025 && (neu?.p95 ?? 0) <= 0.05);
  assert.ok((neu?.roundtrip.p95 ?? 0) > 1 && (neu?.roundtrip.p95 ?? 0) <= 2);
  assert.equal(f.safeToSwitchAt, T - 10_000);
  assert.equal(f.safeToDecommission, false);
  assert.deepEqual(f.onOldIp, ['ignores TTL (us)']);

  const live = render(state({ figures: f }));
  assert.match(live, /^region +honest +ignores TTL +serve-stale +TTL honoured$/m);
  assert.match(live, /^us +new +old! +new +1 of 2 \(50 %\), 1 not yet known$/m);
  assert.match(live, /^all +2 of 3 \(67 %\), 1 not yet known/m);
  assert.match(live, /^127\.0\.0\.2 \(old, provider-a\) +3\/4 +\d+ms +\d+ms +connect_refused +2 \/ 3 \/ 1 /m);
  assert.match(live, /^127\.0\.0\.3 \(new\) +2\/2 /m);
  assert.match(live, /^inbox placement +inbox \/ spam \/ other \/ lost \/ failed /m);
  assert.match(live, /^127\.0\.0\.2 \(old, provider-a\) +2 \/ 0 \/ 0 \/ 0 \/ 0$/m);
  assert.match(live, /^127\.0\.0\.3 \(new\) +1 \/ 2 \/ 0 \/ 1 \/ 0$/m);
  assert.match(live, /^safe to switch: yes, since 00:50 — /m);
  assert.deepEqual(f.oldServer, [
    {
      ip: OLD,
      name: 'provider-a',
      lastSessionAt: T - 20_000,
      quiet: false,
      networks: [
        { net: '198.51.100.0/24', sessions: 5 },
        { net: 'other', sessions: 2 },
      ],
    },
  ]);
  assert.match(
    live,
    /^old server provider-a \(127\.0\.0\.2\) \(its log\): last inbound session 00:20 ago; delivering now: 198\.51\.100\.0\/24 \(5\), other \(2\)$/m,
  );
  assert.match(
    live,
    /^safe to turn the old server off: no — still open: DNS: still answering the old IP: ignores TTL \(us\); old IP: inbound sessions within the quiet time on 127\.0\.0\.2 from 198\.51\.100\.0\/24, other$/m,
  );
  assert.match(live, /Ctrl-C stops the lab/);

  const final = render(
    state({
      figures: f,
      final: {
        events: [
          { at: T - 45_000, label: 'TTL lowered to 4s' },
          { at: T - 20_000, label: 'A record switched to the new IP' },
        ],
      },
    }),
  );
  assert.match(final, /^summary of the whole run \(02:00\): authoritative serves the new IP, TTL 4s$/m);
  assert.match(final, /^timeline: 00:15 TTL lowered to 4s; 00:40 A record switched to the new IP$/m);
  assert.doesNotMatch(final, /Ctrl-C|lab time/);
});

test('the decisions before anything is known, and while waiting for the old TTL', async () => {
  const none = summarize(undefined, await snapshotOf(registryWith([])));
  const text = render(state({ figures: none }));
  assert.match(text, /^safe to switch: not yet — no lowered TTL seen at the authoritative servers$/m);
  assert.match(text, /^safe to turn the old server off: not yet known/m);
  assert.match(text, /^all +none tested yet/m);
  const waiting = summarize(
    undefined,
    await snapshotOf(registryWith([{ probe: 'lab-eu', region: 'eu', r: ttl('r', 'honest', false, false, { at: T + 12_000, decommission: true }) }])),
  );
  const w = render(state({ figures: waiting }));
  assert.match(w, /^safe to switch: not yet — the TTL was lowered; caches may keep the old, longer TTL for 00:12 more$/m);
  assert.match(w, /^safe to turn the old server off: yes — no resolver has answered the old IP for the quiet time$/m);
});
