/**
 * `npm run bench:footprint`: RSS and CPU of one probe process running 50 resolvers × A/AAAA/MX
 * plus SMTP to the 2 server IPs every 15 s (inside the window) against the lab, pushing to a
 * collector process. The lab (authoritative server, 50 caching resolvers, the old and new MTAs)
 * runs in this process; the probe is `mailprobe probe` as its own process, measured from /proc.
 *
 * The probe runs from dist/ (what `npm start`/`mailprobe` run) when dist/cli/main.js exists, else
 * through tsx (whose loader adds to RSS); the header says which.
 *
 * Peer, in the same window: Prometheus's blackbox_exporter (Debian package) doing the same probes
 * (dns prober for each resolver × A/AAAA/MX, tcp prober with an SMTP STARTTLS dialogue to each
 * IP), driven every 15 s the way Prometheus would scrape /probe (the scraper's own cost is not
 * counted, as the collector's is not counted for the probe).
 *
 * Env: BENCH_SECONDS (measured, default 60), BENCH_WARMUP (seconds before measuring, default 20).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { startCachingResolver, type CachingResolver } from '../lab/dns/caching-resolver.js';
import { startDnsWorld } from '../lab/dns/world.js';
import { startMtas } from '../lab/mta/index.js';
import { hashToken } from '../collector/plugins/auth.js';
import { cpuSecondsOf, rssOf, startBlackboxExporter, startCollectorProcess } from './lib/bench-processes.js';
import { testPlanInput, tokenFor } from './lib/plan.js';
import { fmt } from './lib/load.js';
import { startProbeProcess } from './lib/probe-process.js';
import { requirePeers } from '../scripts/peers.mjs';

requirePeers(['prometheus-blackbox-exporter']);

const root = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const RESOLVERS = 50;
const ID = 'footprint';

async function main(): Promise<void> {
  const started = Date.now();
  const dist = existsSync(join(root, 'dist/cli/main.js')); // what startProbeProcess will run
  process.stdout.write(
    `bench:footprint — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}; probe from ${dist ? 'dist/' : 'tsx'}\n`,
  );
  const closers: (() => Promise<void>)[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-footprint-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const world = await startDnsWorld({ initial: { ttl: 30, serve: 'old' }, mtaStsId: '20261204' });
    closers.push(() => world.close());
    const extra: CachingResolver[] = [];
    const kinds = [{ kind: 'honest' }, { kind: 'ignore', extraSeconds: 30 }, { kind: 'clamp', minTtl: 60 }, { kind: 'stale', staleSeconds: 60 }] as const;
    for (let i = 0; extra.length + 4 < RESOLVERS; i++) {
      extra.push(
        await startCachingResolver({ upstream: { host: world.auth.host, port: world.auth.port }, mode: kinds[i % kinds.length] ?? { kind: 'honest' } }),
      );
    }
    closers.push(async () => {
      await Promise.all(extra.map((r) => r.close()));
    });
    const resolvers = [...Object.values(world.resolvers), ...extra].map((r) => r.address);
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
        interval: '60s',
        window_interval: '15s',
        timeout: '10s',
        resolvers,
        authoritative: [world.auth.address],
        smtp: {
          mode: 'rcpt',
          tls: 'required',
          from: 'probe@company.test',
          to: 'postmaster@company.test',
          helo: 'probe.company.test',
          ca_file: mtas.certs.caFile,
        },
        dns: {
          types: ['A', 'AAAA', 'MX'],
          query_timeout: '2s',
          lookup_resolver: world.resolvers.honest.address,
          mta_sts_url: `${world.mtaStsUrl}/.well-known/mta-sts.txt`,
        },
        push: { collectors: [collector.url], spool_dir: join(dir, 'spool') },
      },
      collector: { listen: '127.0.0.1:0', tokens: { [ID]: hashToken(tokenFor(ID)) } },
    });
    const probe = startProbeProcess(dir, plan, ID, tokenFor(ID));
    closers.push(() => probe.stop());
    const pid = probe.pid;

    const modules = (['A', 'AAAA', 'MX'] as const)
      .map(
        (t) =>
          `  dns_${t}:\n    prober: dns\n    timeout: 5s\n    dns:\n      transport_protocol: udp\n      preferred_ip_protocol: ip4\n      query_name: ${t === 'MX' ? 'company.test' : 'mail.company.test'}\n      query_type: ${t}\n`,
      )
      .join('');
    const bb = await startBlackboxExporter(
      `modules:\n${modules}  smtp_starttls:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      preferred_ip_protocol: ip4\n      tls_config:\n        ca_file: ${mtas.certs.caFile}\n        server_name: mail.company.test\n` +
        '      query_response:\n        - expect: "^220 "\n        - send: "EHLO probe.company.test"\n        - expect: "^250 "\n        - send: "STARTTLS"\n        - expect: "^220 "\n        - starttls: true\n        - send: "EHLO probe.company.test"\n        - expect: "^250 "\n        - send: "QUIT"\n',
    );
    closers.push(() => bb.stop());
    const bbTargets = [
      ...resolvers.flatMap((r) => ['A', 'AAAA', 'MX'].map((t) => ({ module: `dns_${t}`, target: r }))),
      { module: 'smtp_starttls', target: `127.0.0.2:${mtas.old.port}` },
      { module: 'smtp_starttls', target: `127.0.0.3:${mtas.new.port}` },
    ];
    const bbCounts = { probes: 0, success: 0 };
    const bbRound = async () => {
      await Promise.all(
        bbTargets.map(async ({ module, target }) => {
          const r = await request(`${bb.url}/probe?module=${module}&target=${encodeURIComponent(target)}`);
          const text = await r.body.text();
          bbCounts.probes++;
          if (/^probe_success 1$/m.test(text)) bbCounts.success++;
        }),
      );
    };
    void bbRound();
    const bbTimer = setInterval(() => void bbRound(), 15_000);
    closers.push(async () => clearInterval(bbTimer));

    const resultsAt = async (): Promise<Record<string, number>> => {
      const r = await request(`${collector.url}/metrics`);
      const text = await r.body.text();
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^mailprobe_checks_total\{[^}]*type="([a-z]+)"[^}]*\} (\d+)/gm)) out[m[1] ?? '?'] = (out[m[1] ?? '?'] ?? 0) + Number(m[2]);
      return out;
    };

    await new Promise((r) => setTimeout(r, WARMUP * 1000));
    if (probe.child.exitCode !== null) throw new Error(`probe exited with ${probe.child.exitCode}: ${probe.stderr()}`);
    const before = await resultsAt();
    const bbBefore = { ...bbCounts };
    const cpu0 = cpuSecondsOf(pid);
    const bbCpu0 = cpuSecondsOf(bb.pid);
    const t0 = performance.now();
    const rss: number[] = [];
    const bbRss: number[] = [];
    while (performance.now() - t0 < SECONDS * 1000) {
      rss.push(rssOf(pid));
      bbRss.push(rssOf(bb.pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSecondsOf(pid) - cpu0;
    const bbCpu = cpuSecondsOf(bb.pid) - bbCpu0;
    const after = await resultsAt();
    const ran = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
    const total = Object.values(ran).reduce((a, b) => a + b, 0);
    const maxRss = Math.max(...rss) / 2 ** 20;
    const lastRss = (rss[rss.length - 1] ?? Number.NaN) / 2 ** 20;
    process.stdout.write(
      `${RESOLVERS} resolvers × A/AAAA/MX + authoritative + SMTP to 2 IPs, every 15 s; measured ${fmt(wall, 0)} s after ${WARMUP} s warm-up\n`,
    );
    process.stdout.write(`checks completed in the measured window (collector): ${JSON.stringify(ran)} = ${total}\n`);
    process.stdout.write(
      `probe RSS: max ${fmt(maxRss, 1)} MiB, last ${fmt(lastRss, 1)} MiB (target < 80 MB: ${maxRss * 1.048576 < 80 ? 'met' : 'NOT met'}); ` +
        `CPU ${fmt((100 * cpu) / wall, 2)} % of one core (target < 2 %: ${(100 * cpu) / wall < 2 ? 'met' : 'NOT met'})\n`,
    );
    const bbMax = Math.max(...bbRss) / 2 ** 20;
    process.stdout.write(
      `blackbox_exporter, same probes in the same window: ${bbCounts.probes - bbBefore.probes} probes (${bbCounts.success - bbBefore.success} succeeded); ` +
        `RSS max ${fmt(bbMax, 1)} MiB; CPU ${fmt((100 * bbCpu) / wall, 2)} % of one core\n`,
    );
    process.stdout.write(`ratio: probe RSS ${fmt(maxRss / bbMax, 2)}× blackbox_exporter's, CPU ${fmt(cpu / bbCpu, 2)}×\n`);
    if (probe.stderr().trim()) process.stdout.write(`probe stderr (last lines):\n${probe.stderr().trim().split('\n').slice(-5).join('\n')}\n`);
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  }
  process.stdout.write(`done in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:footprint failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
