/**
 * Every alert rule driven to firing by a fault injected in the lab, and resolved once the fault is
 * removed: the whole lab (DNS world, old and new MTAs, sink, collector, three probes) with a real
 * Prometheus running the deploy rules 120× faster (compressRules: `for: 15m` → 8 s, `for: 1h` →
 * 30 s, certificate expiring within 14 d → within 2.8 h, probe silent after 300 s → 3 s).
 *
 * Faults that do not interfere run together; two labs run one after the other, both with the DNS
 * timeline held still (the test switches the address itself):
 *   1. before the window (it opens in 10 min): the start raised no alert (Prometheus loads the
 *      compressed rules after its first scrape); the expected pre-switch reverse DNS (both PTRs
 *      the mail host, which points at the old IP: the new IP has no FCrDNS yet) raises no alert;
 *      then the new MTA presents a wrong-name certificate, the
 *      old one greylists, SPF drops the new IP, the DKIM key and DMARC record are removed, the new
 *      IP is listed on the lab blocklist, the old IP's PTR points to a name that does not resolve
 *      and the new IP's to the provider's default name, the MTA-STS policy (enforce) lists another
 *      mx; then one probe is stopped while the TLSA record matches no server's key;
 *   2. inside the window: the mail host switches to the new IP (a resolver ignores the TTL) while
 *      the new MTA refuses connections, the old one presents a certificate expiring in an hour and
 *      the MTA-STS policy (testing) lists another mx;
 *      then the switch with the old server still running raises MailprobeOldIPFCrDNSLost, which
 *      says how to fix it, and giving the old server a name of its own (A + PTR) resolves it, while
 *      the new server, now served, greylists every other session (the success ratio pages);
 *      then the new MTA's relay is slow and the old one's loses round-trip mail (warning, and
 *      critical in the window); then every probe and the collector stop, and come back one by one.
 * The time from each fault to its alert firing, and from the fix to the alert resolving, is printed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { Resolver } from 'node:dns/promises';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LAB_DNSBL, LAB_DOMAIN, LAB_MAIL_HOST, LAB_NEW_IP, LAB_OLD_IP, MTA_LOG_ID, startLabCutover, type LabCutover } from '../../lab/cutover.js';
import { tlsaRecordFor } from '../../lab/mta/certs.js';
import type { ActiveAlert } from '../../lab/prometheus.js';
import { deployAlertNames, promtoolTestedAlerts } from '../../bench/lib/prometheus.js';
const REGIONS = ['eu', 'us', 'ap'] as const;

interface Drill {
  alert: string;
  fault: string;
  /** Which instance of the alert this fault must raise (others may be active for other reasons). */
  labels?: Record<string, string>;
  inject(lab: LabCutover): Promise<void> | void;
  /** Removes the fault (nothing for faults that end by themselves). */
  clear(lab: LabCutover): Promise<void> | void;
  /** Checks the alert once it fires (what it says), with every alert active at that moment. */
  firing?(alert: ActiveAlert, active: ActiveAlert[]): void;
}

interface Row {
  alert: string;
  fault: string;
  'fired after (s)': number;
  'resolved after (s)': number;
}

const rows: Row[] = [];

function matching(alerts: ActiveAlert[], d: Drill, state?: 'firing'): ActiveAlert[] {
  return alerts.filter(
    (a) => a.labels.alertname === d.alert && (state === undefined || a.state === state) && Object.entries(d.labels ?? {}).every(([k, v]) => a.labels[k] === v),
  );
}

/** Injects the drills' faults together, waits for every alert to fire, clears them, waits for every alert to resolve. */
async function drill(lab: LabCutover, drills: Drill[], timeoutMs = 60_000): Promise<void> {
  const prom = lab.prometheus;
  assert.ok(prom, 'the lab runs a Prometheus');
  const before = await prom.alerts();
  for (const d of drills) assert.deepEqual(matching(before, d, 'firing'), [], `${d.alert} fires before its fault`);
  const t0 = Date.now();
  for (const d of drills) await d.inject(lab);
  const fired = new Map<Drill, number>();
  while (fired.size < drills.length) {
    const alerts = await prom.alerts();
    for (const d of drills) {
      const now = matching(alerts, d, 'firing');
      if (fired.has(d) || now.length === 0) continue;
      fired.set(d, Date.now() - t0);
      d.firing?.(now[0]!, alerts);
    }
    if (Date.now() - t0 > timeoutMs) break;
    await sleep(250);
  }
  if (fired.size < drills.length) {
    const names = new Set(drills.filter((d) => !fired.has(d)).map((d) => d.alert));
    const active = (await prom.alerts()).filter((a) => names.has(a.labels.alertname ?? '')).map((a) => `${a.state} ${JSON.stringify(a.labels)}`);
    // A failed scrape (timeout on a busy machine) makes every series stale and resets each pending alert.
    const scrapes = (await prom.vector(`count_over_time(up[${Math.ceil(timeoutMs / 1000)}s]) - sum_over_time(up[${Math.ceil(timeoutMs / 1000)}s])`))
      .map((v) => v.value[1])
      .join();
    assert.deepEqual(
      drills.filter((d) => !fired.has(d)).map((d) => `${d.alert} (${d.fault})`),
      [],
      `alerts not firing ${timeoutMs / 1000} s after their fault; active: ${active.join('; ')}; failed scrapes meanwhile: ${scrapes}`,
    );
  }
  const t1 = Date.now();
  for (const d of drills) await d.clear(lab);
  const resolved = new Map<Drill, number>();
  while (resolved.size < drills.length) {
    const alerts = await prom.alerts();
    for (const d of drills) if (!resolved.has(d) && matching(alerts, d).length === 0) resolved.set(d, Date.now() - t1);
    if (Date.now() - t1 > timeoutMs) break;
    await sleep(250);
  }
  assert.deepEqual(
    drills.filter((d) => !resolved.has(d)).map((d) => `${d.alert} (${d.fault})`),
    [],
    `alerts still active ${timeoutMs / 1000} s after the fix`,
  );
  for (const d of drills) {
    rows.push({
      alert: d.alert,
      fault: d.fault,
      'fired after (s)': Number(((fired.get(d) ?? 0) / 1000).toFixed(1)),
      'resolved after (s)': Number(((resolved.get(d) ?? 0) / 1000).toFixed(1)),
    });
  }
}

/** Waits until every probe (the old MTA's log follower pushes too, and is not one) has pushed and Prometheus has the readiness checks of both servers. */
async function warmUp(lab: LabCutover): Promise<void> {
  const prom = lab.prometheus;
  assert.ok(prom);
  await prom.waitFor(
    async () =>
      (await prom.vector(`mailprobe_probe_last_push_timestamp_seconds{probe!="${MTA_LOG_ID}"}`)).length === REGIONS.length &&
      (await prom.vector('mailprobe_smtp_up')).length === 2 * REGIONS.length &&
      (await prom.vector('mailprobe_spf_pass')).length === 2 &&
      (await prom.vector('mailprobe_dnsbl_listed')).length === 2 &&
      (await prom.vector('mailprobe_roundtrip_total')).length > 0,
    30_000,
    'every probe and every check in Prometheus',
  );
  await prom.rulesLoaded;
}

/**
 * The start of the lab is an expected state: no alert has fired since Prometheus started (before
 * its first scrape `up` is absent, which MailprobeCollectorsAllDown's absent() would take for
 * every collector down once `for:` is compressed to seconds).
 */
async function startWasQuiet(lab: LabCutover): Promise<void> {
  const prom = lab.prometheus;
  assert.ok(prom);
  assert.deepEqual(
    (await prom.vector('count_over_time(ALERTS{alertstate="firing"}[10m])')).map((v) => JSON.stringify(v.metric)),
    [],
    'no alert fired while the lab started',
  );
}

const OLD_OWN_NAME = `old-mx.${LAB_MAIL_HOST.split('.').slice(1).join('.')}`;
const RDNS_ALERTS = 'MailprobeFCrDNSBroken|MailprobeNewIPFCrDNSNotReady|MailprobeOldIPFCrDNSLost';

/**
 * Before the switch both PTRs are the mail host, which points at the old IP: the new IP has no
 * FCrDNS yet (as the rdns check reports) but will once served, and that must not alert. Checked
 * over more than the compressed `for:` of the reverse-DNS alerts.
 */
async function expectedPreSwitchStateIsQuiet(lab: LabCutover): Promise<void> {
  const prom = lab.prometheus;
  assert.ok(prom);
  const value = async (expr: string) => (await prom.vector(expr)).map((v) => Number(v.value[1]));
  await prom.waitFor(async () => (await value(`max(mailprobe_fcrdns_ok{ip="${LAB_NEW_IP}"})`)).length === 1, 20_000, "the new IP's reverse DNS in Prometheus");
  assert.deepEqual(await value(`max(mailprobe_fcrdns_ok{ip="${LAB_NEW_IP}"})`), [0], 'the new IP does not confirm before the switch');
  assert.deepEqual(await value(`max(mailprobe_fcrdns_ok_when_served{ip="${LAB_NEW_IP}"})`), [1], 'but it will once served');
  await sleep(12_000); // for: 15m at 120x is 7.5 s
  assert.deepEqual(
    (await prom.vector(`ALERTS{alertname=~"${RDNS_ALERTS}"} or count_over_time(ALERTS{alertname=~"${RDNS_ALERTS}"}[1m])`)).map((v) => JSON.stringify(v.metric)),
    [],
    'no reverse-DNS alert, firing or pending, in the expected pre-switch state',
  );
}

const labOptions = {
  // No seed mailbox: its receiver files the new IP's mail as spam from the start, which fires
  // MailprobeInboxNewIPSpam (that alert's cases are promtool's and test/grafana/values.test.ts's).
  inbox: false,
  durationMs: 60_000,
  collectorListen: '127.0.0.1:0',
  prometheus: true,
  timeline: false,
  interval: '2s',
  logger: pino({ level: 'warn' }),
} as const;
const DEFAULT_PTR = { [LAB_OLD_IP]: [LAB_MAIL_HOST], [LAB_NEW_IP]: [LAB_MAIL_HOST] };
/** The new provider's default PTR name: it resolves nowhere. */
const PROVIDER_PTR = `ip-127-0-0-3.provider.${LAB_DOMAIN}`;
const BROKEN_PTR = { [LAB_OLD_IP]: [`gone.${LAB_MAIL_HOST}`], [LAB_NEW_IP]: [PROVIDER_PTR] };
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const mtaStsPolicy = (mode: 'enforce' | 'testing', mx: string) => `version: STSv1\r\nmode: ${mode}\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;

after(() => {
  console.log('# alert, fault, seconds from the fault to firing and from the fix to resolved (rules at 120x, scrape and evaluation every 1 s)');
  console.table(rows);
});

test('before the window: readiness, served-IP and probe alerts fire on their faults and resolve', { timeout: 180_000 }, async () => {
  const lab1 = await startLabCutover({ ...labOptions, window: { start: 600_000, end: 1_200_000 } });
  try {
    await warmUp(lab1);
    await startWasQuiet(lab1);
    await expectedPreSwitchStateIsQuiet(lab1);
    await drill(lab1, [
      {
        alert: 'MailprobeNewServerNotReady',
        fault: 'new MTA: certificate for a wrong name (before the window)',
        labels: { ip: LAB_NEW_IP },
        inject: (l) => l.mtas.setFault('new', { kind: 'bad-cert' }),
        clear: (l) => l.mtas.setFault('new', null),
      },
      { alert: 'MailprobeCertificateInvalid', fault: 'new MTA: certificate for a wrong name', labels: { ip: LAB_NEW_IP }, inject: () => {}, clear: () => {} },
      {
        alert: 'MailprobeDeliveryFailingServedIPOutsideWindow',
        fault: 'old (served) MTA: 451 at RCPT outside the window',
        labels: { ip: LAB_OLD_IP },
        inject: (l) => l.mtas.setFault('old', { kind: 'temp-fail', at: 'rcpt' }),
        clear: (l) => l.mtas.setFault('old', null),
      },
      {
        alert: 'MailprobeSPFNotPassing',
        fault: 'SPF lists only the old IP',
        labels: { ip: LAB_NEW_IP },
        inject: (l) => l.dns.auth.updateZone({ spf: 'old' }),
        clear: (l) => l.dns.auth.updateZone({ spf: 'both' }),
      },
      {
        alert: 'MailprobeDKIMKeyMissing',
        fault: 'DKIM key s2026 removed',
        labels: { selector: 's2026' },
        inject: (l) => l.dns.auth.updateZone({ selectors: [] }),
        clear: (l) => l.dns.auth.updateZone({ selectors: ['s2026'] }),
      },
      {
        alert: 'MailprobeDMARCMissing',
        fault: 'DMARC record removed',
        inject: (l) => l.dns.auth.updateZone({ dmarc: null }),
        clear: (l) => l.dns.auth.updateZone({ dmarc: 'quarantine' }),
      },
      {
        alert: 'MailprobeNewIPListed',
        fault: `new IP listed on ${LAB_DNSBL}`,
        labels: { ip: LAB_NEW_IP, list: LAB_DNSBL },
        inject: (l) => l.dns.auth.updateZone({ dnsbl: [{ zone: LAB_DNSBL, listed: { [LAB_NEW_IP]: ['127.0.0.2'] } }] }),
        clear: (l) => l.dns.auth.updateZone({ dnsbl: [{ zone: LAB_DNSBL, listed: {} }] }),
      },
      {
        // Before the switch the new IP's PTR name does not resolve to it (the mail host still
        // points to the old IP), so the drill breaks the old, served IP's PTR.
        alert: 'MailprobeFCrDNSBroken',
        fault: "old IP's PTR names a host that does not resolve",
        labels: { ip: LAB_OLD_IP },
        inject: (l) => l.dns.auth.updateZone({ ptr: BROKEN_PTR }),
        clear: (l) => l.dns.auth.updateZone({ ptr: DEFAULT_PTR }),
      },
      {
        // Set with the old IP's PTR above (one zone update for both).
        alert: 'MailprobeNewIPFCrDNSNotReady',
        fault: "new IP's PTR is the provider's default name (resolves nowhere): no FCrDNS once served",
        labels: { ip: LAB_NEW_IP },
        inject: () => {},
        clear: () => {},
        firing: (a) => assert.match(a.annotations.description ?? '', new RegExp(`PTR of the new IP ${re(LAB_NEW_IP)} \\(${re(PROVIDER_PTR)}\\)`)),
      },
      {
        alert: 'MailprobeMTASTSEnforcedWithoutMailHost',
        fault: 'the MTA-STS policy (mode enforce) lists another mx',
        labels: { domain: LAB_DOMAIN },
        inject: (l) => l.dns.setMtaStsPolicy(mtaStsPolicy('enforce', `other-mx.${LAB_DOMAIN}`)),
        clear: (l) => l.dns.setMtaStsPolicy(null),
      },
    ]);
    // On its own: a stopped probe's last results stay in the collector (until probe_stale_after),
    // so its last successful check of the new server would keep MailprobeNewServerNotReady quiet.
    await drill(lab1, [
      {
        alert: 'MailprobeProbeSilent',
        fault: 'probe lab-ap stopped (then started again)',
        labels: { probe: 'lab-ap' },
        inject: (l) => l.stopProbe('ap'),
        clear: (l) => l.startProbe('ap'),
      },
      {
        // The two probes left outvote nobody: their median is the mismatch.
        alert: 'MailprobeTLSAMismatch',
        fault: "the zone's TLSA record matches no server's key (the new IP's certificate before the switch)",
        labels: { ip: LAB_NEW_IP, side: 'new' },
        inject: (l) => l.dns.auth.updateZone({ tlsa: true }),
        clear: (l) => l.dns.auth.updateZone({ tlsa: [tlsaRecordFor(l.mtas.certs.mailHost.cert, 3, 1, 1)] }),
        firing: (a) => assert.equal(a.labels.severity, 'warning'),
      },
    ]);
  } finally {
    await lab1.stop();
  }
});

test('inside the window: delivery, TTL, certificate, round-trip and fleet alerts fire on their faults and resolve', { timeout: 240_000 }, async () => {
  const lab2 = await startLabCutover({ ...labOptions, window: { start: -60_000, end: 1_200_000 }, expiringCertSeconds: 3600 });
  try {
    await warmUp(lab2);
    await drill(
      lab2,
      [
        {
          alert: 'MailprobeDeliveryFailingServedIP',
          fault: 'new MTA refuses connections; DNS switched to it (in the window)',
          labels: { ip: LAB_NEW_IP },
          inject: async (l) => {
            await l.mtas.setFault('new', { kind: 'refuse' });
            // The ignoring resolver fetches the old answer just before the switch (it keeps it its
            // TTL plus 2 long TTLs), so it is bound to hand it out after the TTL has run out.
            l.dns.resolvers.ignore.flush();
            const r = new Resolver({ timeout: 1000, tries: 1 });
            r.setServers([l.dns.resolvers.ignore.address]);
            assert.deepEqual(await r.resolve4(LAB_MAIL_HOST), [LAB_OLD_IP]);
            l.dns.auth.set({ serve: 'new', ttl: l.dns.auth.state().ttl });
          },
          clear: (l) => l.mtas.setFault('new', null),
        },
        {
          // The ttl check judges each change of the address record: the violation stands until the
          // next change. The fix: the resolver's cache is flushed and the record changes again
          // (to both IPs), which the resolver now follows.
          alert: 'MailprobeResolverIgnoringTTL',
          fault: 'the switch: resolver "ignore" keeps the old answer past its TTL; fixed by a flush and the next change',
          inject: () => {},
          clear: (l) => {
            l.dns.resolvers.ignore.flush();
            l.dns.auth.set({ serve: 'both', ttl: l.dns.auth.state().ttl });
          },
        },
        {
          alert: 'MailprobeMTASTSMailHostNotCovered',
          fault: 'the MTA-STS policy (mode testing) lists another mx',
          labels: { domain: LAB_DOMAIN },
          inject: (l) => l.dns.setMtaStsPolicy(mtaStsPolicy('testing', `other-mx.${LAB_DOMAIN}`)),
          clear: (l) => l.dns.setMtaStsPolicy(null),
        },
        {
          alert: 'MailprobeCertificateExpiring',
          fault: 'old MTA: certificate expiring in 1 h (14 d at 120x)',
          labels: { ip: LAB_OLD_IP },
          inject: (l) => l.mtas.setFault('old', { kind: 'expiring-cert' }),
          clear: (l) => l.mtas.setFault('old', null),
        },
        // `for: 1h` is 30 s at 120x, after the probes first saw the certificate: room on a busy machine.
      ],
      90_000,
    );
    // The switch with the old server still running: its PTR (the mail host) no longer confirms.
    // Fixed the way the runbook says: a name of its own (A record + PTR). The first group switched
    // too, and serves both IPs since its fix: wait until that left no such alert behind.
    await lab2.prometheus?.waitFor(
      async () => (await lab2.prometheus?.alerts())?.every((a) => a.labels.alertname !== 'MailprobeOldIPFCrDNSLost') ?? false,
      30_000,
      'no MailprobeOldIPFCrDNSLost left from the first switch',
    );
    await drill(lab2, [
      {
        alert: 'MailprobeOldIPFCrDNSLost',
        fault: "the switch to the new IP while the old server runs: the old IP's PTR (the mail host) no longer confirms; fixed by old-mx A + PTR",
        labels: { ip: LAB_OLD_IP },
        inject: (l) => l.dns.auth.set({ serve: 'new', ttl: l.dns.auth.state().ttl }),
        clear: (l) => l.dns.auth.updateZone({ hosts: { [OLD_OWN_NAME]: [LAB_OLD_IP] }, ptr: { ...DEFAULT_PTR, [LAB_OLD_IP]: [OLD_OWN_NAME] } }),
        firing: (a, active) => {
          assert.match(
            a.annotations.description ?? '',
            new RegExp(`PTR of the old IP ${LAB_OLD_IP.replaceAll('.', '\\.')} \\(${LAB_MAIL_HOST.replaceAll('.', '\\.')}\\) no longer resolves back`),
          );
          assert.match(
            a.annotations.description ?? '',
            /give it a host name of its own \(an A record .*, the PTR .* set to that name, and that name as its HELO\)/,
          );
          assert.deepEqual(
            active
              .filter((x) => x.state === 'firing' && (x.labels.alertname === 'MailprobeFCrDNSBroken' || x.labels.alertname === 'MailprobeNewIPFCrDNSNotReady'))
              .map((x) => JSON.stringify(x.labels)),
            [],
            'after the switch the new IP confirms and the old one is not served: no other reverse-DNS alert',
          );
        },
      },
      {
        // Each probe's sessions to the new IP succeed and fail by turns: the last check alone
        // (MailprobeDeliveryFailingServedIP) can miss that; the success ratio does not.
        alert: 'MailprobeDeliveryRatioLowServedIP',
        fault: 'the switch: the new (served) MTA answers every other RCPT of the same sender and recipient 451 (greylisting-style flapping), in the window',
        labels: { ip: LAB_NEW_IP },
        inject: (l) => l.mtas.setFault('new', { kind: 'temp-fail', at: 'rcpt', every: 2 }),
        clear: (l) => l.mtas.setFault('new', null),
        firing: (a) => assert.equal(a.labels.severity, 'critical'),
      },
    ]);
    await drill(lab2, [
      {
        alert: 'MailprobeRoundtripSlow',
        fault: 'new MTA relays round-trip mail 3.5 s late (300 s at 120x)',
        labels: { via_ip: LAB_NEW_IP },
        inject: (l) => l.mtas.setFault('new', { kind: 'relay-delay', ms: 3500 }),
        clear: (l) => l.mtas.setFault('new', null),
      },
      {
        alert: 'MailprobeRoundtripLost',
        fault: 'old MTA accepts round-trip mail and drops it',
        labels: { via_ip: LAB_OLD_IP },
        inject: (l) => l.mtas.setFault('old', { kind: 'relay-drop' }),
        clear: (l) => l.mtas.setFault('old', null),
      },
      {
        alert: 'MailprobeRoundtripLostInWindow',
        fault: 'the same lost round-trip mail, inside the window: critical',
        labels: { via_ip: LAB_OLD_IP },
        inject: () => {},
        clear: () => {},
        firing: (a) => assert.equal(a.labels.severity, 'critical'),
      },
    ]);
    // The collector alerts, then NoProbeData: stopping the parts, there is no fault to inject.
    for (const r of REGIONS) await lab2.stopProbe(r);
    await drill(lab2, [
      {
        alert: 'MailprobeCollectorDown',
        fault: 'the collector stopped (then started again)',
        inject: (l) => l.stopCollector(),
        clear: (l) => l.startCollector(),
      },
      { alert: 'MailprobeCollectorsAllDown', fault: 'the only collector stopped', inject: () => {}, clear: () => {} },
    ]);
    await drill(lab2, [
      {
        alert: 'MailprobeNoProbeData',
        fault: 'every probe stopped, collector restarted empty (probes then started)',
        inject: () => {},
        clear: async (l) => {
          for (const r of REGIONS) await l.startProbe(r);
        },
      },
    ]);
  } finally {
    await lab2.stop();
  }
});

test('every alert rule was drilled in the lab, or at least has promtool cases (listed)', (t) => {
  // The alerts the deploy rule files ship (deploy/prometheus/rules), read from them.
  const rules = new Set(deployAlertNames());
  const drilled = new Set(rows.map((r) => r.alert));
  assert.deepEqual(
    [...drilled].filter((a) => !rules.has(a)),
    [],
    'every drilled alert is a rule of deploy/prometheus/rules',
  );
  const notDrilled = [...rules].filter((a) => !drilled.has(a)).sort();
  const tested = promtoolTestedAlerts();
  assert.deepEqual(
    notDrilled.filter((a) => !tested.has(a)),
    [],
    'an alert without a lab drill has promtool test cases (deploy/prometheus/tests)',
  );
  t.diagnostic(`${drilled.size} of ${rules.size} alerts drilled in the lab; promtool cases only: ${notDrilled.join(', ') || 'none'}`);
});
