/**
 * `npm run bench:detection`: fault injected → alert firing in a real Prometheus (Debian package)
 * with the default intervals: probe every 15 s in the window, scrape and rule evaluation every
 * 15 s (deploy/prometheus/prometheus.yml), the deploy rules unchanged (MailprobeDeliveryFailingServedIP
 * has `for: 2m`). The lab (DNS world serving the old IP, old and new MTAs) runs here; the collector
 * and the probe are their own processes. Fault: the old MTA, the one DNS serves, refuses
 * connections. Stated beside the floor: probe interval + scrape interval + rule `for`.
 *
 * Takes about 3 minutes (the floor alone is 2.5).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashToken } from '../collector/plugins/auth.js';
import { startDnsWorld } from '../lab/dns/world.js';
import { startMtas } from '../lab/mta/index.js';
import { startPrometheus } from '../lab/prometheus.js';
import { startCollectorProcess } from './lib/bench-processes.js';
import { testPlanInput, tokenFor, labSmtpSettings } from './lib/plan.js';
import { fmt } from './lib/load.js';
import { startProbeProcess } from './lib/probe-process.js';
import { requirePeers } from '../scripts/peers.mjs';

requirePeers(['prometheus']);

const root = resolve(import.meta.dirname, '..');
const ID = 'detect';
const PROBE_INTERVAL_S = 15;
const SCRAPE_INTERVAL_S = 15;
const FOR_S = 120;
const ALERT = 'MailprobeDeliveryFailingServedIP';

async function main(): Promise<void> {
  const started = Date.now();
  const dist = existsSync(join(root, 'dist/cli/main.js')); // what startProbeProcess will run
  process.stdout.write(
    `bench:detection — ${cpus().length} CPUs, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}; probe from ${dist ? 'dist/' : 'tsx'}\n`,
  );
  const closers: (() => Promise<void>)[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-detection-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const world = await startDnsWorld({ initial: { ttl: 30, serve: 'old' } });
    closers.push(() => world.close());
    const mtas = await startMtas({ mailHost: 'mail.company.test', domain: 'company.test' });
    closers.push(() => mtas.close());
    const collector = await startCollectorProcess({ probes: [ID] });
    closers.push(() => collector.stop());

    const plan = testPlanInput({
      cutover: {
        servers: [
          { ip: '127.0.0.2', side: 'old', name: 'provider-a', port: mtas.old.port },
          { ip: '127.0.0.3', side: 'new', name: 'provider-b', port: mtas.new.port },
        ],
      },
      probes: {
        window_interval: `${PROBE_INTERVAL_S}s`,
        resolvers: Object.values(world.resolvers).map((r) => r.address),
        authoritative: [world.auth.address],
        smtp: labSmtpSettings(mtas.certs.caFile, { connect_timeout: '2s' }),
        dns: { types: ['A', 'MX'], query_timeout: '2s', lookup_resolver: world.resolvers.honest.address },
        push: { collectors: [collector.url], spool_dir: join(dir, 'spool') },
      },
      collector: { listen: '127.0.0.1:0', tokens: { [ID]: hashToken(tokenFor(ID)) } },
    });
    const probe = startProbeProcess(dir, plan, ID, tokenFor(ID));
    closers.push(() => probe.stop());

    const prom = await startPrometheus({ targets: [new URL(collector.url).host], interval: `${SCRAPE_INTERVAL_S}s` });
    closers.push(() => prom.stop());

    // Steady state first: Prometheus sees the old IP up and DNS serving it.
    await prom.waitFor(
      async () =>
        (
          await prom.vector(
            'max without (instance) (mailprobe_smtp_up{ip="127.0.0.2"}) == 1 and on (region, probe) max by (region, probe) (mailprobe_dns_answer_side{type="A", side="old"})',
          )
        ).length > 0,
      90_000,
      'the old IP up and served, in Prometheus',
    );
    const t0 = Date.now();
    await mtas.setFault('old', { kind: 'refuse' });
    process.stdout.write(`fault injected at ${new Date(t0).toISOString()}: the old MTA (served by DNS) refuses connections\n`);

    let pendingAt: number | undefined;
    let firingSeen: number | undefined;
    await prom.waitFor(
      async () => {
        const a = (await prom.alerts()).find((x) => x.labels.alertname === ALERT && x.labels.ip === '127.0.0.2');
        if (a) pendingAt ??= Date.parse(a.activeAt);
        if (a?.state === 'firing') firingSeen = Date.now();
        return firingSeen !== undefined;
      },
      (PROBE_INTERVAL_S + 2 * SCRAPE_INTERVAL_S + FOR_S + 60) * 1000,
      `${ALERT} firing`,
    );
    const floor = PROBE_INTERVAL_S + SCRAPE_INTERVAL_S + FOR_S;
    const latency = ((firingSeen ?? Number.NaN) - t0) / 1000;
    process.stdout.write(
      `${ALERT}: pending ${fmt(((pendingAt ?? Number.NaN) - t0) / 1000, 1)} s after the fault (activeAt), firing seen ${fmt(latency, 1)} s after it\n` +
        `floor = probe interval ${PROBE_INTERVAL_S} s + scrape interval ${SCRAPE_INTERVAL_S} s + for ${FOR_S} s = ${floor} s (rule evaluation every ${SCRAPE_INTERVAL_S} s adds up to ${SCRAPE_INTERVAL_S} s more);` +
        ` latency − floor = ${fmt(latency - floor, 1)} s (target ≤ +5 s: ${latency - floor <= 5 ? 'met' : 'NOT met'}; below the floor when the fault lands just before a probe run or scrape)\n`,
    );
    if (probe.stderr().trim()) process.stdout.write(`probe stderr (last lines):\n${probe.stderr().trim().split('\n').slice(-3).join('\n')}\n`);
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  }
  process.stdout.write(`done in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:detection failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
