/**
 * Every dashboard panel query proven by its value against a real Prometheus: an HA pair of real
 * collectors receives a known sequence of results from two probes (each batch pushed to both, as
 * probes do), a real Prometheus scrapes both every second with the deploy rules, and every panel
 * query (Grafana variables substituted as "All" sends them) is evaluated at one instant and
 * compared, series by series, with what the sequence implies: counts of checks, failures, lookups
 * and round trips, TTLs, latencies, flags and timestamps.
 *
 * The fleet dashboard's optional rows are fed too: collector A remote-writes into a real
 * Prometheus receiver through a queue smaller than one round's samples (the rest are dropped and
 * counted), collector B is pointed at Mimir's push path on that Prometheus, which answers 404 (every
 * sample rejected); and a real probe, paced by its clock one check run per round, pushes to a third
 * collector while Prometheus scrapes its /metrics (job mailprobe-probe), with one check run that
 * never ends (in flight).
 *
 * Counters: every series is incremented by the same amount in each of ROUNDS rounds, from round 0
 * on, with one round per scrape; Prometheus sees the increase of rounds 1…ROUNDS-1 ("visible"), and
 * rate()/increase() extrapolate it by a factor in [1, 1.5) that is the same for every series of one
 * scrape. So ratios and quantiles are exact; a per-minute or per-range figure is checked to lie in
 * [0.97, 1.5] × its visible count — a missing `60 *` (÷60) or a sum over the pair (×2) falls outside.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_VARIABLES, annotationQueries, panelQueries, substituteVariables, type PanelQuery } from '../../grafana/index.js';
import { resultOps, seriesKey } from '../../collector/samples.js';
import { PROBE_JOB, SMTP_BUCKETS } from '../../protocol/metrics.js';
import type { CheckResult, SmtpPhase } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { dnsblRefused, dnsTimeout, roundtripLost, ttlResult } from '../support/results.js';
import { testPlan } from '../../bench/lib/plan.js';
import { startTestPrometheus, type QueryData, type TestPrometheus } from '../../bench/lib/prometheus.js';
import { startRemoteWritePrometheus, type RemoteWritePrometheus } from '../../bench/lib/prometheus-rw.js';
import type { RemoteWriteOutput } from '../../collector/outputs/remote-write.js';
import { register } from '../../probe/checks/index.js';
import { abortableSleep } from '../probe/fixtures/test-checks.js';
import { createProbe, type Probe } from '../../probe/runtime.js';
import type { AuthResult } from '../../protocol/results.js';
import { tokenFor } from '../../bench/lib/plan.js';
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOST = 'mail.company.test';
const OLD = '127.0.0.2';
const NEW = '127.0.0.3';
const AUTH = 'auth:ns1.company.test';
const ROUNDS = 5;
/** Rounds whose increase a rate over the test's duration sees (the first is its starting value). */
const VISIBLE = ROUNDS - 1;
const T0 = Date.now();
/** Fixed moments the results report (Unix ms / s). */
const SAFE_AT = Math.floor(T0 / 1000) * 1000 - 7_200_000;
const CERT = { old: Math.floor(T0 / 1000) + 20 * 86_400, new: Math.floor(T0 / 1000) + 75 * 86_400 };
const TTL = { old: 3300, new: 240, both: 240 };
const PHASES: Record<'old' | 'new', Partial<Record<SmtpPhase, number>>> = {
  old: { connect: 0.011, banner: 0.35, ehlo: 0.006, starttls: 0.03, mail: 0.005, rcpt: 0.02, quit: 0.002 },
  new: { connect: 0.011, banner: 0.04, ehlo: 0.006, starttls: 0.03, mail: 0.005, rcpt: 0.02, quit: 0.002 },
};
const RT_LATENCY = { old: 6.1, new: 3.0 };
/** What the log follower beside the old server counts per round. */
const MTA = { net: '198.51.100.0/24', sessions: 3, messages: 2, unknown: 1 };
/** Inbox-placement latency at gmail per side: in the (5, 10] and (10, 20] buckets. */
const INBOX_LATENCY = { old: 8, new: 14 };
/** A whole session: the sum of its phases. */
const sessionSum = (side: 'old' | 'new') => Object.values(PHASES[side]).reduce((a, b) => a + b, 0);
/** Lookup durations per resolver kind. */
const LOOKUP = { system: 0.0008, public: 0.012, auth: 0.004, timeout: 2 };

interface ValueProbe {
  id: string;
  region: string;
  resolvers: Record<string, 'old' | 'new' | 'both'>;
  violator?: string;
  /** Resolvers whose TTL behaviour is not known yet (not observed after an expiry). */
  untested: string[];
  /** A resolver that times out every round. */
  failing?: string;
  /** SMTP outcomes to the new IP each round, in order (greylisting: 451, then accepted). */
  newSessions: ('success' | 'temp_fail')[];
  lostViaNew: boolean;
  safeToDecommission: boolean;
}

const PROBES: readonly ValueProbe[] = [
  {
    id: 'p-eu',
    region: 'eu',
    resolvers: { system: 'new', '8.8.8.8': 'new', '1.1.1.1': 'old' },
    violator: '1.1.1.1',
    untested: ['8.8.8.8'],
    failing: '192.0.2.53',
    newSessions: ['temp_fail', 'success'],
    lostViaNew: false,
    safeToDecommission: true,
  },
  {
    id: 'p-us',
    region: 'us',
    resolvers: { system: 'new', '9.9.9.9': 'both', '8.8.4.4': 'old' },
    untested: ['8.8.4.4'],
    newSessions: ['success'],
    lostViaNew: true,
    safeToDecommission: false,
  },
];

/** The names the plan gives some resolvers (the others are named by their label). */
const RESOLVER_NAMES: Readonly<Record<string, string>> = { '8.8.8.8': 'Google', '8.8.4.4': 'Google', '1.1.1.1': 'Cloudflare', '9.9.9.9': 'Quad9' };

const answers = (side: 'old' | 'new' | 'both') => (side === 'old' ? [OLD] : side === 'new' ? [NEW] : [OLD, NEW]);

/** The results of one probe in one round: the same in every round. */
function roundResults(p: ValueProbe, t: number): CheckResult[] {
  const out: CheckResult[] = [];
  for (const [resolver, side] of Object.entries({ ...p.resolvers, [AUTH]: 'new' as const })) {
    out.push({
      type: 'dns',
      startedAt: t,
      durationSeconds: resolver === AUTH ? LOOKUP.auth : resolver === 'system' ? LOOKUP.system : LOOKUP.public,
      ok: true,
      resolver,
      ...(RESOLVER_NAMES[resolver] === undefined ? {} : { resolverName: RESOLVER_NAMES[resolver] }),
      authoritative: resolver === AUTH,
      name: HOST,
      qtype: 'A',
      transport: 'udp',
      rcode: 'NOERROR',
      answers: answers(side),
      ttl: TTL[side],
      side,
    });
  }
  if (p.failing) out.push(dnsTimeout(t, { resolver: p.failing, name: HOST, seconds: LOOKUP.timeout, code: 'DNS_TIMEOUT', message: 'no answer within 2s' }));
  for (const resolver of Object.keys(p.resolvers)) {
    const v = resolver === p.violator;
    out.push(
      ttlResult(t, {
        resolver,
        ...(RESOLVER_NAMES[resolver] === undefined ? {} : { resolverName: RESOLVER_NAMES[resolver] }),
        name: HOST,
        staleSeconds: v ? 1500 : 0,
        violation: v,
        tested: !p.untested.includes(resolver),
        extensionSeconds: v ? 3000 : 0,
        safeToSwitchAt: SAFE_AT,
        safeToDecommission: p.safeToDecommission,
      }),
    );
  }
  for (const [ip, side] of [
    [OLD, 'old'],
    [NEW, 'new'],
  ] as const) {
    // The new IP's PTR is still the provider's default name, which does not resolve back.
    const ptr = side === 'old' ? HOST : 'ip-127-0-0-3.provider.test';
    out.push({
      type: 'rdns',
      startedAt: t,
      durationSeconds: 0.004,
      ok: true,
      ip,
      side,
      ptrNames: [ptr],
      fcrdns: side === 'old',
      matchesMailHost: side === 'old',
    });
    out.push({ type: 'auth', startedAt: t, durationSeconds: 0.02, ok: true, method: 'spf', subject: ip, side, pass: true });
    out.push({
      type: 'dnsbl',
      startedAt: t,
      durationSeconds: 0.03,
      ok: true,
      ip,
      side,
      list: 'bl.example.test',
      listed: side === 'new',
      answers: side === 'new' ? ['127.0.0.2'] : [],
    });
    out.push(dnsblRefused(t, { ip, side, list: 'dbl.example-list.test', message: '127.255.255.254' }));
    const tls = { version: 'TLSv1.3', certNames: [HOST], certExpiry: CERT[side], verified: true };
    // The TLSA records match the old key only (the new server's record is not yet published).
    const tlsa = { match: side === 'old', records: 1, detail: 'one record' };
    for (const outcome of side === 'old' ? (['success'] as const) : p.newSessions) {
      out.push(
        outcome === 'success'
          ? {
              type: 'smtp',
              startedAt: t,
              durationSeconds: sessionSum(side),
              ok: true,
              ip,
              side,
              port: 25,
              mode: 'rcpt',
              phases: PHASES[side],
              replyCode: 250,
              tls,
              tlsa,
            }
          : {
              type: 'smtp',
              startedAt: t,
              durationSeconds: 0.2,
              ok: false,
              phase: 'rcpt',
              errorClass: 'temp_fail',
              code: 'SMTP_4XX',
              message: '451 4.7.1 Greylisted',
              ip,
              side,
              port: 25,
              mode: 'rcpt',
              phases: PHASES[side],
              replyCode: 451,
              tls,
              tlsa,
            },
      );
    }
    out.push({
      type: 'roundtrip',
      startedAt: t,
      durationSeconds: RT_LATENCY[side],
      ok: true,
      viaIp: ip,
      side,
      messageId: `rt-${p.id}-${t}-${side}@probes.test`,
      delivered: true,
      latencySeconds: RT_LATENCY[side],
      sameClock: true,
      deliveringIp: ip,
      helo: HOST,
      verdicts: { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' },
    });
  }
  // Inbox placement at gmail: the old IP's in the inbox; the new IP's in the inbox for eu, in spam
  // with a failing SPF verdict for us.
  for (const side of ['old', 'new'] as const) {
    const spam = side === 'new' && p.lostViaNew;
    out.push({
      type: 'inbox',
      startedAt: t,
      durationSeconds: INBOX_LATENCY[side] + 1,
      ok: true,
      receiver: 'gmail',
      viaIp: side === 'old' ? OLD : NEW,
      side,
      messageId: `ib-${p.id}-${t}-${side}`,
      placement: spam ? 'spam' : 'inbox',
      folder: spam ? 'Junk' : 'INBOX',
      latencySeconds: INBOX_LATENCY[side],
      deliveringIp: side === 'old' ? OLD : NEW,
      verdicts: { spf: spam ? 'fail' : 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none' },
    });
  }
  if (p.lostViaNew) {
    out.push(roundtripLost(t, { viaIp: NEW, side: 'new', messageId: `rt-${p.id}-${t}-lost@probes.test`, seconds: 120, message: 'not received' }));
  }
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dkim', subject: 's2026', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dmarc', subject: 'company.test', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.05, ok: true, method: 'mta-sts', subject: 'company.test', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'tlsa', subject: HOST, pass: true });
  // The log follower beside the old server reports with eu's token: a partner network and "other"
  // still deliver to the old IP (its last session a second ago), one line of no grammar per round.
  if (p.id === 'p-eu')
    out.push({
      type: 'mta',
      startedAt: t,
      durationSeconds: 0,
      ok: true,
      ips: [
        {
          ip: OLD,
          side: 'old',
          sessions: [
            { net: MTA.net, count: MTA.sessions },
            { net: 'other', count: 1 },
          ],
          messages: [{ net: MTA.net, count: MTA.messages }],
          lastSessionAt: t - 1000,
          quiet: false,
        },
      ],
      lines: 50,
      unknownLines: MTA.unknown,
    });
  return out;
}

function batch(p: ValueProbe, round: number): Batch {
  const t = Date.now();
  return {
    probe: { id: p.id, region: p.region, version: '0.1.0', spool: { bytes: 4096 * (round + 1), batches: round + 1, dropped: round } },
    batch: { id: `${p.id}-${round}-${t}`, seq: round, createdAt: t },
    results: roundResults(p, t),
  };
}

// --- The run: one Prometheus for every assertion ------------------------------------------------

const plan = testPlan();
/** The same plan (and window) with other collector or probe settings. */
const planWith = (over: { collector?: Record<string, unknown>; probes?: Record<string, unknown> }) =>
  testPlan({ cutover: { window: { ...plan.cutover.window } }, ...over });
/** Collector A's remote-write queue: fewer samples than one round writes, so each round drops the rest. */
const RW_QUEUE_MAX = 40;
const remoteWrite = (replica: string, url: string, more: Record<string, unknown> = {}) => ({
  // One shard, batches larger than a round and no flush of its own before the test's at the end of
  // the round: one request per round.
  remote_write: { url, replica, flush_interval: '10m', resend_interval: '4m', shards: 1, batch_size: 100_000, ...more },
});
const rwOf = (c: TestCollector) => c.ingest.outputs.find((o) => o.name === 'remote-write') as RemoteWriteOutput;
/** The probe scraped directly, its clock one interval further each round (one check run per round). */
const INSIDE = { id: 'p-ap', region: 'ap', intervalMs: 600_000, checkSeconds: 0.06 };
let inside: Probe | undefined;
let insideCollector: TestCollector | undefined;
let insideClock = Date.now() - 3_000_000;
const spoolDir = mkdtempSync(join(tmpdir(), 'mailprobe-values-'));
let rwProm: RemoteWritePrometheus;
/** Samples one round writes per collector (from collector B, which refuses none before sending). */
let samplesPerRound = 0;
let collectors: TestCollector[] = [];
let prom: TestPrometheus;
/** The instant every query is evaluated at (Unix seconds). */
let at = 0;
/** When each probe's last batch was accepted by both collectors: [before, after] (Unix ms). */
const lastPush = new Map<string, [number, number]>();
const results = new Map<PanelQuery, QueryData>();
const instances: string[] = [];

before(async () => {
  rwProm = await startRemoteWritePrometheus({ ruleFiles: [] });
  collectors = [
    await startTestCollector(planWith({ collector: remoteWrite('rw-a', rwProm.writeUrl, { queue_max_samples: RW_QUEUE_MAX }) })),
    // Mimir's push path: a Prometheus receiver answers 404 there.
    await startTestCollector(planWith({ collector: remoteWrite('rw-b', `${rwProm.url}/api/v1/push`) })),
  ];
  instances.push(...collectors.map((c) => new URL(c.url).host));
  insideCollector = await startTestCollector(plan);
  inside = createProbe({
    plan: planWith({
      probes: {
        interval: `${INSIDE.intervalMs / 1000}s`,
        window_interval: `${INSIDE.intervalMs / 1000}s`,
        timeout: '5m',
        push: { collectors: [insideCollector.url], batch_max_results: 1, batch_max_age: '100ms', retry_min: '50ms', retry_max: '200ms' },
      },
    }),
    id: INSIDE.id,
    region: INSIDE.region,
    token: tokenFor(INSIDE.id),
    registry: { auth: insideCheck() },
    spoolDir,
    logger: pino({ level: 'silent' }),
    healthListen: '127.0.0.1:0',
    now: () => insideClock,
    random: () => 0,
  });
  await inside.start();
  prom = await startTestPrometheus({ targets: instances, moreJobs: { [PROBE_JOB]: [new URL(inside.healthUrl ?? '').host] } });
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of PROBES) {
      const b = batch(p, round);
      const t = Date.now();
      for (const c of collectors) assert.equal((await c.push(b)).status, 200);
      lastPush.set(p.id, [t, Date.now()]);
    }
    // A misconfigured probe: one push with a wrong token per round, to the first collector.
    assert.equal((await collectors[0]!.push(batch(PROBES[0]!, round), { token: 'not-a-token' })).status, 401);
    // The remote-write requests of the round are answered before the next scrape.
    for (const c of collectors) await rwOf(c).flush();
    // The probe's check run of this round, its result pushed.
    if (round > 0) insideClock += INSIDE.intervalMs;
    await waitUntil(() => inside?.stats().results === round + 1 && inside.stats().spool.batches === 0, `the probe's run of round ${round}`);
    await prom.waitForScrapes(1, 20_000);
  }
  const rejected = await counterOf(collectors[1]!, 'mailprobe_collector_remote_write_samples_total', { result: 'rejected' });
  samplesPerRound = rejected / ROUNDS;
  assert.ok(Number.isInteger(samplesPerRound) && samplesPerRound > RW_QUEUE_MAX, `${rejected} samples rejected in ${ROUNDS} rounds`);
  await prom.waitForScrapes(1, 20_000);
  // Rules evaluated after the last scrape.
  await new Promise((r) => setTimeout(r, 1_500));
  at = Date.now() / 1000;
  for (const q of panelQueries()) results.set(q, await prom.query(substituteVariables(q.expr, VARIABLES), at));
  for (const a of annotationQueries()) {
    const q: PanelQuery = { dashboard: a.dashboard, panel: 'annotation', refId: a.name, expr: a.expr, instant: true, format: 'time_series' };
    results.set(q, await prom.query(substituteVariables(a.expr, VARIABLES), at));
  }
});

after(async () => {
  await prom?.stop();
  await rwProm?.stop();
  await inside?.stop({ graceMs: 0, flushMs: 0 });
  await insideCollector?.close();
  for (const c of collectors) await c.close();
  rmSync(spoolDir, { recursive: true, force: true });
});

/** The probe's check: target s0 takes INSIDE.checkSeconds, s1 never ends (until the probe stops). */
function insideCheck() {
  return register<'auth', null>({
    type: 'auth',
    targets: () => ['s0', 's1'].map((s) => ({ key: s, target: { method: 'dkim' as const, subject: s }, settings: null })),
    async run(target, _settings, ctx): Promise<AuthResult> {
      const ms = target.subject === 's0' ? INSIDE.checkSeconds * 1000 : 3_600_000;
      await abortableSleep(ms, ctx.signal);
      return { type: 'auth', method: 'dkim', subject: target.subject, pass: true, ok: true, startedAt: ctx.now(), durationSeconds: INSIDE.checkSeconds };
    },
  });
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A counter's value in a collector's own registry. */
async function counterOf(c: TestCollector, name: string, labels: Record<string, string>): Promise<number> {
  const values = (await c.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

/** "All" selected, and a rate interval the whole run fits in. */
const VARIABLES = { ...ALL_VARIABLES, __rate_interval: '1m', __range: '1h', phase: 'rcpt' };

// --- Expectations -------------------------------------------------------------------------------

/** An exact value; a per-interval count checked as [0.97, 1.5] × visible count; or bounds. */
type V = number | { rate: number } | { within: [number, number] } | (() => number);
interface Expect {
  /** Labels that name a series of the result, joined by a space. */
  by: string[];
  values: Record<string, V>;
}

const perRound = (pred: (r: CheckResult, p: ValueProbe) => boolean) => PROBES.reduce((n, p) => n + roundResults(p, 0).filter((r) => pred(r, p)).length, 0);
const outcome = (r: CheckResult) => (r.ok ? 'success' : (r as { errorClass: string }).errorClass);
/** Visible count of results matching `pred` over the run (what increase() over it sees). */
const visible = (pred: (r: CheckResult, p: ValueProbe) => boolean) => VISIBLE * perRound(pred);
const smtp = (ip: string, result: string) => (r: CheckResult) => r.type === 'smtp' && r.ip === ip && outcome(r) === result;
const inBucket = (lo: number, hi: number, q: number) => lo + (hi - lo) * q;
const RESULTS_PER_ROUND = PROBES.reduce((n, p) => n + roundResults(p, 0).length, 0);

function expectations(): Record<string, Expect> {
  const [a, b] = instances;
  const euResolvers = ['system', '8.8.8.8', '1.1.1.1'];
  const usResolvers = ['system', '9.9.9.9', '8.8.4.4'];
  const p90 = { system: inBucket(0, 0.001, 0.9), public: inBucket(0.01, 0.025, 0.9), auth: inBucket(0.0025, 0.005, 0.9), timeout: inBucket(1, 2.5, 0.9) };
  const rcpt = (q: number) => inBucket(0.01, 0.025, q);
  const rt = { old: (q: number) => inBucket(5, 10, q), new: (q: number) => inBucket(2, 5, q) };
  const checkTypes: Record<string, V> = {};
  for (const key of new Set(PROBES.flatMap((p) => roundResults(p, 0).map((r) => `${r.type} ${outcome(r)}`)))) {
    checkTypes[key] = { rate: visible((r) => `${r.type} ${outcome(r)}` === key) };
  }
  const series = (p: ValueProbe) =>
    new Set(
      roundResults(p, 0).flatMap((r) =>
        resultOps({ id: p.id, region: p.region }, r)
          .list()
          .map((op) => (op.op === 'one-of' ? seriesKey(op.metric, op.labels, [op.label, '']) : seriesKey(op.metric, op.labels))),
      ),
    ).size;
  const heat: Record<string, V> = { '+Inf': { rate: visible((r) => r.type === 'smtp') } };
  for (const le of SMTP_BUCKETS) heat[String(le)] = le < 0.02 ? 0 : { rate: visible((r) => r.type === 'smtp') };
  const phaseBreakdown: Record<string, V> = {};
  for (const [ip, side] of [
    [OLD, 'old'],
    [NEW, 'new'],
  ] as const)
    for (const [phase, s] of Object.entries(PHASES[side])) phaseBreakdown[`${ip} ${phase}`] = s;

  return {
    'cutover.json/Phase/A': { by: [], values: { '': 1 } },
    'cutover.json/Window/A': { by: [], values: { '': () => Date.parse(plan.cutover.window.start) / 1000 - at } },
    'cutover.json/Window/B': { by: [], values: { '': () => Date.parse(plan.cutover.window.end) / 1000 - at } },
    'cutover.json/Authoritative DNS serves/A': { by: ['side'], values: { new: 1 } },
    'cutover.json/Safe to switch/A': { by: ['name'], values: { [HOST]: SAFE_AT } },
    'cutover.json/Safe to turn the old server off/A': { by: ['name'], values: { [HOST]: 0 } },
    // The old IP took a session a second ago: not quiet for decommission_quiet (24h); so not both.
    'cutover.json/Safe to turn the old server off/B': { by: ['ip'], values: { [OLD]: 0 } },
    'cutover.json/Safe to turn the old server off/C': { by: [], values: { '': 0 } },
    'cutover.json/Networks still delivering to the old IP/A': {
      by: ['server', 'ip', 'client_net'],
      values: { [`p-eu ${OLD} ${MTA.net}`]: { rate: VISIBLE * MTA.sessions }, [`p-eu ${OLD} other`]: { rate: VISIBLE } },
    },
    'cutover.json/Networks still delivering to the old IP/B': {
      by: ['server', 'ip', 'client_net'],
      values: { [`p-eu ${OLD} ${MTA.net}`]: { rate: VISIBLE * MTA.messages } },
    },
    'cutover.json/Mail server log lines not understood/A': { by: ['server'], values: { 'p-eu': { rate: VISIBLE * MTA.unknown } } },
    'cutover.json/Readiness of the new server/A': { by: [], values: { '': 1 } },
    'cutover.json/Readiness of the new server/B': { by: [], values: { '': 0 } },
    'cutover.json/Readiness of the new server/C': { by: [], values: { '': 0 } },
    'cutover.json/Readiness of the new server/D': { by: [], values: { '': 1 } },
    'cutover.json/Readiness of the new server/E': { by: [], values: { '': 1 } },
    'cutover.json/Readiness of the new server/F': { by: [], values: { '': 1 } },
    'cutover.json/Readiness of the new server/G': { by: [], values: { '': 0 } },
    'cutover.json/Readiness of the new server/H': { by: [], values: { '': 1 } },
    // The new IP's PTR is the provider's default name: no FCrDNS now, nor once served. Names from cutover.servers.
    'cutover.json/Reverse DNS per server IP/A': {
      by: ['ip', 'ptr', 'server_name'],
      values: { [`${OLD} ${HOST} provider-a`]: 1, [`${NEW} ip-127-0-0-3.provider.test provider-b`]: 1 },
    },
    'cutover.json/Reverse DNS per server IP/B': { by: ['ip', 'side', 'server_name'], values: { [`${OLD} old provider-a`]: 1, [`${NEW} new provider-b`]: 0 } },
    'cutover.json/Reverse DNS per server IP/C': { by: ['ip', 'side', 'server_name'], values: { [`${OLD} old provider-a`]: 1, [`${NEW} new provider-b`]: 0 } },
    'cutover.json/Resolvers on the new IP/A': { by: ['region'], values: { eu: 2 / 3, us: 1 / 3 } },
    // Among the resolvers whose TTL behaviour is known: eu system honours, 1.1.1.1 ignores it
    // (8.8.8.8 not known yet); us system and 9.9.9.9 honour it (8.8.4.4 not known yet).
    'cutover.json/Resolvers honouring the TTL per region/A': { by: ['region'], values: { eu: 1 / 2, us: 1 } },
    'cutover.json/Resolvers honouring the TTL/A': { by: [], values: { '': 3 / 4 } },
    'cutover.json/TTL behaviour of resolvers/A': { by: ['state'], values: { honoured: 3, ignoring: 1, 'not yet known': 2 } },
    'cutover.json/MTA-STS and TLSA/A': { by: ['domain'], values: { 'company.test': 1 } },
    'cutover.json/MTA-STS and TLSA/B': { by: ['name'], values: { [HOST]: 1 } },
    'cutover.json/MTA-STS and TLSA/C': { by: ['ip', 'side'], values: { [`${OLD} old`]: 1, [`${NEW} new`]: 0 } },
    // Every probe's refused blocklist query for each IP, per minute.
    'cutover.json/Blocklist lookups failing/A': { by: ['list'], values: { 'dbl.example-list.test': { rate: visible((r) => r.type === 'dnsbl' && !r.ok) } } },
    // The window is open (the test plan's, an hour either side): the lost round trip pages.
    'cutover.json/Firing alerts/A': {
      by: ['alertname', 'severity'],
      values: {
        'MailprobeRoundtripLost warning': 1,
        'MailprobeRoundtripLostInWindow critical': 1,
        // us: gmail files the new IP's mail as spam (the old IP's in the inbox) with spf=fail.
        'MailprobeInboxNewIPSpam warning': 1,
        'MailprobeInboxAuthFailing warning': 1,
      },
    },

    'delivery.json/Delivery success ratio/A': { by: ['region', 'ip'], values: { [`eu ${OLD}`]: 1, [`eu ${NEW}`]: 0.5, [`us ${OLD}`]: 1, [`us ${NEW}`]: 1 } },
    'delivery.json/Session latency per destination IP/A': {
      by: ['ip', 'side', 'quantile'],
      values: {
        [`${OLD} old 0.5`]: inBucket(0.25, 0.5, 0.5),
        [`${OLD} old 0.95`]: inBucket(0.25, 0.5, 0.95),
        [`${NEW} new 0.5`]: inBucket(0.1, 0.25, 0.5),
        [`${NEW} new 0.95`]: inBucket(0.1, 0.25, 0.95),
      },
    },
    'delivery.json/Last SMTP check per probe/A': {
      by: ['probe', 'ip'],
      values: { [`p-eu ${OLD}`]: 1, [`p-eu ${NEW}`]: 1, [`p-us ${OLD}`]: 1, [`p-us ${NEW}`]: 1 },
    },
    'delivery.json/Latency quantiles of phase $phase/A': {
      by: ['region', 'ip', 'quantile'],
      values: Object.fromEntries(
        ['eu', 'us'].flatMap((r) => [OLD, NEW].flatMap((ip) => ['0.5', '0.9', '0.99'].map((q) => [`${r} ${ip} ${q}`, rcpt(Number(q))]))),
      ),
    },
    'delivery.json/Mean SMTP session/A': {
      by: ['region', 'ip'],
      values: { [`eu ${OLD}`]: sessionSum('old'), [`eu ${NEW}`]: sessionSum('new'), [`us ${OLD}`]: sessionSum('old'), [`us ${NEW}`]: sessionSum('new') },
    },
    'delivery.json/Latency of phase $phase to $ip/A': { by: ['le'], values: heat },
    // Per minute from the 5-minute recorded rate: 60 × visible / 300.
    'delivery.json/Failures by class/A': {
      by: ['region', 'ip', 'result'],
      values: { [`eu ${NEW} temp_fail`]: { rate: (60 * visible(smtp(NEW, 'temp_fail'))) / 300 } },
    },
    'delivery.json/Phase breakdown/A': { by: ['ip', 'phase'], values: phaseBreakdown },
    'delivery.json/SMTP checks per minute by result/A': {
      by: ['ip', 'result'],
      values: {
        [`${OLD} success`]: { rate: visible(smtp(OLD, 'success')) },
        [`${NEW} success`]: { rate: visible(smtp(NEW, 'success')) },
        [`${NEW} temp_fail`]: { rate: visible(smtp(NEW, 'temp_fail')) },
      },
    },
    'delivery.json/Certificate expires in/A': { by: ['ip', 'side'], values: { [`${OLD} old`]: () => CERT.old - at, [`${NEW} new`]: () => CERT.new - at } },

    'roundtrip.json/Round-trip latency by delivering IP/A': {
      by: ['via_ip', 'quantile'],
      values: Object.fromEntries(
        (['old', 'new'] as const).flatMap((s) => ['0.5', '0.9', '0.99'].map((q) => [`${s === 'old' ? OLD : NEW} ${q}`, rt[s](Number(q))])),
      ),
    },
    'roundtrip.json/Round-trip p90 per region/A': {
      by: ['region', 'via_ip'],
      values: { [`eu ${OLD}`]: rt.old(0.9), [`eu ${NEW}`]: rt.new(0.9), [`us ${OLD}`]: rt.old(0.9), [`us ${NEW}`]: rt.new(0.9) },
    },
    'roundtrip.json/Lost messages in the time range/A': { by: ['via_ip'], values: { [NEW]: { within: [VISIBLE, 1.5 * VISIBLE] } } },
    'roundtrip.json/Share of messages lost/A': { by: ['via_ip'], values: { [OLD]: 0, [NEW]: 1 / 3 } },
    'roundtrip.json/Round trips by result/A': {
      by: ['via_ip', 'result'],
      values: { [`${OLD} delivered`]: { rate: 2 * VISIBLE }, [`${NEW} delivered`]: { rate: 2 * VISIBLE }, [`${NEW} lost`]: { rate: VISIBLE } },
    },
    'roundtrip.json/Receiver verdicts of the last message per delivering IP/A': {
      by: ['via_ip', 'method', 'result'],
      values: Object.fromEntries([OLD, NEW].flatMap((ip) => ['spf', 'dkim', 'dmarc', 'fcrdns'].map((m) => [`${ip} ${m} pass`, 1]))),
    },

    'roundtrip.json/Inbox placement per receiver and delivering IP/A': {
      by: ['receiver', 'via_ip', 'result'],
      values: {
        [`gmail ${OLD} inbox`]: { within: [2 * VISIBLE, 3 * VISIBLE] },
        [`gmail ${NEW} inbox`]: { within: [VISIBLE, 1.5 * VISIBLE] },
        [`gmail ${NEW} spam`]: { within: [VISIBLE, 1.5 * VISIBLE] },
      },
    },
    'roundtrip.json/Share in spam per receiver and delivering IP/A': { by: ['receiver', 'via_ip'], values: { [`gmail ${OLD}`]: 0, [`gmail ${NEW}`]: 0.5 } },
    'roundtrip.json/Arrival at the receivers, p90/A': {
      by: ['receiver', 'via_ip'],
      values: { [`gmail ${OLD}`]: inBucket(5, 10, 0.9), [`gmail ${NEW}`]: inBucket(10, 20, 0.9) },
    },
    'roundtrip.json/Verdicts of the real receivers on the last message/A': {
      by: ['receiver', 'via_ip', 'method', 'result'],
      values: Object.fromEntries(
        [
          ...['spf pass', 'dkim pass', 'dmarc pass', 'arc none'].map((v) => `gmail ${OLD} ${v}`),
          ...['spf pass', 'spf fail', 'dkim pass', 'dmarc pass', 'arc none'].map((v) => `gmail ${NEW} ${v}`),
        ].map((k) => [k, 1]),
      ),
    },

    'resolvers.json/Answer side per resolver/A': {
      by: ['region', 'probe', 'resolver'],
      values: {
        'eu p-eu system': 2,
        'eu p-eu 8.8.8.8': 2,
        'eu p-eu 1.1.1.1': 1,
        'eu p-eu 192.0.2.53': 6,
        [`eu p-eu ${AUTH}`]: 2,
        'us p-us system': 2,
        'us p-us 9.9.9.9': 3,
        'us p-us 8.8.4.4': 1,
        [`us p-us ${AUTH}`]: 2,
      },
    },
    'resolvers.json/Resolvers per side/A': { by: ['side'], values: { new: 3, old: 2, both: 1, error: 1 } },
    'resolvers.json/TTL honoured/A': { by: ['region'], values: { eu: 1 / 2, us: 1 } },
    'resolvers.json/Remaining TTL per resolver/A': {
      by: ['region', 'resolver'],
      values: {
        'eu system': TTL.new,
        'eu 8.8.8.8': TTL.new,
        'eu 1.1.1.1': TTL.old,
        [`eu ${AUTH}`]: TTL.new,
        'us system': TTL.new,
        'us 9.9.9.9': TTL.both,
        'us 8.8.4.4': TTL.old,
        [`us ${AUTH}`]: TTL.new,
      },
    },
    'resolvers.json/TTL extension per resolver/A': {
      by: ['region', 'resolver'],
      values: Object.fromEntries([...euResolvers.map((r) => [`eu ${r}`, r === '1.1.1.1' ? 3000 : 0]), ...usResolvers.map((r) => [`us ${r}`, 0])]),
    },
    'resolvers.json/Resolvers ignoring the TTL/A': { by: ['region', 'probe', 'resolver'], values: { 'eu p-eu 1.1.1.1': 1500 } },
    'resolvers.json/Stale seconds per resolver/A': {
      by: ['region', 'resolver'],
      values: Object.fromEntries([...euResolvers.map((r) => [`eu ${r}`, r === '1.1.1.1' ? 1500 : 0]), ...usResolvers.map((r) => [`us ${r}`, 0])]),
    },
    'resolvers.json/Lookup latency p90 per resolver/A': {
      by: ['region', 'resolver'],
      values: {
        'eu system': p90.system,
        'eu 8.8.8.8': p90.public,
        'eu 1.1.1.1': p90.public,
        [`eu ${AUTH}`]: p90.auth,
        'eu 192.0.2.53': p90.timeout,
        'us system': p90.system,
        'us 9.9.9.9': p90.public,
        'us 8.8.4.4': p90.public,
        [`us ${AUTH}`]: p90.auth,
      },
    },
    'resolvers.json/Failed lookups by class/A': { by: ['region', 'resolver', 'result'], values: { 'eu 192.0.2.53 timeout': { rate: VISIBLE } } },

    'fleet.json/Probes/A': { by: [], values: { '': PROBES.length } },
    'fleet.json/Since the last push/A': {
      by: ['probe'],
      values: Object.fromEntries(
        PROBES.map((p) => [
          p.id,
          { within: [at - (lastPush.get(p.id)?.[1] ?? 0) / 1000 - 0.01, at - (lastPush.get(p.id)?.[0] ?? 0) / 1000 + 0.01] as [number, number] },
        ]),
      ),
    },
    'fleet.json/Collectors up/A': { by: ['instance'], values: { [a ?? '']: 1, [b ?? '']: 1 } },
    'fleet.json/Spool depth/A': { by: ['probe'], values: { 'p-eu': 4096 * ROUNDS, 'p-us': 4096 * ROUNDS } },
    'fleet.json/Batches dropped from full spools/A': { by: ['probe'], values: { 'p-eu': ROUNDS - 1, 'p-us': ROUNDS - 1 } },
    'fleet.json/Check results per minute by type and outcome/A': { by: ['type', 'result'], values: checkTypes },
    'fleet.json/Batches per minute by result/A': {
      by: ['instance', 'result'],
      values: {
        [`${a} accepted`]: { rate: PROBES.length * VISIBLE },
        [`${a} rejected`]: { rate: VISIBLE },
        [`${b} accepted`]: { rate: PROBES.length * VISIBLE },
      },
    },
    'fleet.json/Rejected requests by code/A': { by: ['instance', 'code'], values: { [`${a} unauthorized`]: { rate: VISIBLE } } },
    'fleet.json/Results applied per second/A': {
      by: ['instance'],
      values: { [a ?? '']: { rate: (RESULTS_PER_ROUND * VISIBLE) / 60 }, [b ?? '']: { rate: (RESULTS_PER_ROUND * VISIBLE) / 60 } },
    },
    // A duration the collector measured: only its bounds are known (the largest bucket is 1 s).
    'fleet.json/Batch ingest latency p99/A': { by: ['instance'], values: { [a ?? '']: { within: [1e-6, 1] }, [b ?? '']: { within: [1e-6, 1] } } },
    'fleet.json/Series per probe/A': { by: ['probe'], values: { 'p-eu': series(PROBES[0]!), 'p-us': series(PROBES[1]!) } },

    // Remote write: A sends RW_QUEUE_MAX samples a round and drops the rest; B's are all refused (404).
    'fleet.json/Remote-write queue/A': { by: ['instance'], values: { [a ?? '']: 0, [b ?? '']: 0 } },
    'fleet.json/Samples sent per second by result/A': {
      by: ['instance', 'result'],
      values: { [`${a} sent`]: { rate: (RW_QUEUE_MAX * VISIBLE) / 60 }, [`${b} rejected`]: { rate: (samplesPerRound * VISIBLE) / 60 } },
    },
    'fleet.json/Samples sent per second by result/B': {
      by: ['instance', 'reason'],
      values: { [`${a} queue_full`]: { rate: ((samplesPerRound - RW_QUEUE_MAX) * VISIBLE) / 60 } },
    },
    'fleet.json/Remote-write requests/A': {
      by: ['instance', 'result'],
      values: { [`${a} success`]: { rate: VISIBLE / 60 }, [`${b} rejected`]: { rate: VISIBLE / 60 } },
    },
    // Request durations on loopback: only their bounds are known (the largest bucket is 1 s).
    'fleet.json/Remote-write requests/B': { by: ['instance'], values: { [a ?? '']: { within: [1e-6, 1] }, [b ?? '']: { within: [1e-6, 1] } } },

    // The probe scraped directly: one accepted push a round, an empty spool, one run that never ends.
    'fleet.json/Pushes per minute by collector and result/A': {
      by: ['probe', 'collector', 'result'],
      values: { [`${INSIDE.id} ${insideCollector?.url} accepted`]: { rate: VISIBLE } },
    },
    'fleet.json/Spooled (probe view)/A': { by: ['region', 'probe'], values: { [`${INSIDE.region} ${INSIDE.id}`]: 0 } },
    // Every run of s0 sleeps 60 ms: in the (0.05, 0.1] bucket, or a later one on a busy machine.
    'fleet.json/Check run p90 by type/A': { by: ['type'], values: { auth: { within: [0.05, 0.5] } } },
    'fleet.json/Check runs in flight/A': { by: ['probe'], values: { [INSIDE.id]: 1 } },
    ...annotations(),
  };
}

/**
 * The annotations of every dashboard: the window is open; the authoritative servers serve the new
 * IP since the first round, less than a minute ago, so the switch marker is on.
 */
function annotations(): Record<string, Expect> {
  const out: Record<string, Expect> = {};
  for (const a of annotationQueries()) out[`${a.dashboard}/annotation/${a.name}`] = { by: [], values: { '': 1 } };
  return out;
}

const keyOf = (q: PanelQuery) => `${q.dashboard}/${q.panel}/${q.refId}`;

/** The samples of a query result as label key → value. */
function samples(d: QueryData, by: string[]): Map<string, number> {
  const out = new Map<string, number>();
  const put = (metric: Record<string, string>, v: string) => {
    const k = by.map((l) => metric[l] ?? '').join(' ');
    assert.ok(!out.has(k), `two series for "${k}" (labels ${by.join(', ')})`);
    out.set(k, Number(v));
  };
  if (d.resultType === 'vector') for (const s of d.result) put(s.metric, s.value[1]);
  else if (d.resultType === 'scalar') put({}, d.result[1]);
  else throw new Error(`unexpected ${d.resultType}`);
  return out;
}

function check(key: string, got: number, want: V): string | null {
  if (typeof want === 'function') want = want();
  if (typeof want === 'number') {
    const ok = Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)) + 1e-6;
    return ok ? null : `${key}: ${got}, expected ${want}`;
  }
  if ('rate' in want) {
    const ok = got >= 0.97 * want.rate && got <= 1.5 * want.rate;
    return ok ? null : `${key}: ${got}, expected ${want.rate} × [0.97, 1.5] (${(got / want.rate).toFixed(3)}×)`;
  }
  const [lo, hi] = want.within;
  return got >= lo && got <= hi ? null : `${key}: ${got}, expected within [${lo}, ${hi}]`;
}

test('every panel query (the optional rows too) has an expected value, and only those', () => {
  const want = new Set(Object.keys(expectations()));
  const have = [...results.keys()].map(keyOf);
  assert.deepEqual(
    have.filter((k) => !want.has(k)),
    [],
    'panel queries without an expected value: add them to expectations()',
  );
  assert.deepEqual(
    [...want].filter((k) => !have.includes(k)),
    [],
    'expectations for panel queries that do not exist',
  );
});

test('every panel query has the value the pushed sequence implies, series by series', () => {
  const exp = expectations();
  const problems: string[] = [];
  for (const [q, d] of results) {
    const e = exp[keyOf(q)];
    if (!e) continue;
    const got = samples(d, e.by);
    const missing = Object.keys(e.values).filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !(k in e.values));
    if (missing.length || extra.length) problems.push(`${keyOf(q)}: series missing [${missing.join('; ')}], unexpected [${extra.join('; ')}]`);
    for (const [k, v] of got) {
      const w = e.values[k];
      if (w === undefined) continue;
      const p = check(`${keyOf(q)} {${k}}`, v, w);
      if (p) problems.push(p);
    }
  }
  assert.deepEqual(problems, []);
});

test('every panel query that shows resolver names gives each resolver the name the plan gives it (or its label)', () => {
  const problems: string[] = [];
  let named = 0;
  for (const [q, d] of results) {
    if (!q.expr.includes('resolver_name') || d.resultType !== 'vector') continue;
    for (const s of d.result) {
      const r = s.metric.resolver;
      if (r === undefined) continue;
      named++;
      const want = RESOLVER_NAMES[r] ?? r;
      if (s.metric.resolver_name !== want) problems.push(`${keyOf(q)} {${r}}: resolver_name ${s.metric.resolver_name}, expected ${want}`);
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(named >= 35, `only ${named} series with a resolver`);
});

test('the checks can fail: a factor of 60 or 2 off, a missing series and a copy of the pair are caught', () => {
  assert.ok(check('x', 60 * 4, { rate: 4 }));
  assert.ok(check('x', 4 / 60, { rate: 4 }));
  assert.ok(check('x', 2 * 4 * 1.05, { rate: 4 }));
  assert.equal(check('x', 4 * 1.2, { rate: 4 }), null);
  assert.ok(check('x', 2 * 240, 240));
  assert.throws(
    () =>
      samples(
        {
          resultType: 'vector',
          result: [
            { metric: { a: '1', instance: 'x' }, value: [0, '1'] },
            { metric: { a: '1', instance: 'y' }, value: [0, '1'] },
          ],
        },
        ['a'],
      ),
    /two series/,
  );
});

test('the switch annotation marks only the minute after the switch', async () => {
  const expr = annotationQueries().find((a) => a.name === 'A-record switch')?.expr ?? '';
  const now = await prom.query(expr, at);
  const later = await prom.query(expr, at + 120);
  assert.deepEqual([now.resultType === 'vector' && now.result.length, later.resultType === 'vector' && later.result.length], [1, 0]);
});

test('remote write: the receiver holds what collector A counts as sent; sent and dropped add up to what B was refused', async () => {
  const [a, b] = collectors as [TestCollector, TestCollector];
  const received = await rwProm.query('{instance="rw-a"}[1h]');
  const got = received.resultType === 'matrix' ? received.result.reduce((n, s) => n + s.values.length, 0) : Number.NaN;
  assert.equal(got, RW_QUEUE_MAX * ROUNDS, 'samples in the receiver');
  assert.equal(await counterOf(a, 'mailprobe_collector_remote_write_samples_total', { result: 'sent' }), RW_QUEUE_MAX * ROUNDS);
  assert.equal(
    await counterOf(a, 'mailprobe_collector_remote_write_dropped_samples_total', { reason: 'queue_full' }),
    (samplesPerRound - RW_QUEUE_MAX) * ROUNDS,
  );
  assert.equal(await counterOf(b, 'mailprobe_collector_remote_write_requests_total', { result: 'rejected' }), ROUNDS);
});
