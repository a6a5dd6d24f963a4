/**
 * `npm run bench:footprint`: RSS and CPU of probe processes running 50 resolvers × A/AAAA/MX
 * plus SMTP to the 2 server IPs every 15 s (inside the window) against the lab, pushing to a
 * collector process. The lab (authoritative server, 50 caching resolvers, the old and new MTAs)
 * runs in this process; each probe is `mailprobe probe` as its own process, measured from /proc.
 *
 * Probes, all in the same window, each started as `node dist/cli/main.js probe …` like the deploy
 * files start it (the command re-executes itself with its V8 flags: config/node-runtime.ts):
 * - `lean`: `--checks dns,smtp` (the workload, like for like with the peer);
 * - `lean-defaults`: the same with V8's default flags (MAILPROBE_NODE_FLAGS empty: what the
 *   flags buy);
 * - `all`: every check type the plan enables (dns, ttl, rdns, auth, dnsbl, smtp).
 *
 * The probes run from dist/ (what `npm start`/`mailprobe` run) when dist/cli/main.js exists, else
 * through tsx (whose loader adds to RSS); the header says which.
 *
 * Peer, in the same window: Prometheus's blackbox_exporter (Debian package) doing the same probes
 * (dns prober for each resolver × A/AAAA/MX, tcp prober with an SMTP STARTTLS dialogue to each
 * IP), driven every 15 s the way Prometheus would scrape /probe (the scraper's own cost is not
 * counted, as the collector's is not counted for the probe).
 *
 * Cores: the probes and blackbox_exporter run on core 0, the load (this process with the lab,
 * and the collector) on core 1 (taskset; BENCH_PIN=0 turns it off). Goals (issue 14): lean probe
 * RSS ≤ 70 MB steady and ≤ 2× blackbox_exporter's, CPU ≤ 1.5 % of a core; printed as met or not.
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
import { cpuSecondsOf, pinLoadGenerator, rssOf, startBlackboxExporter, startCollectorProcess } from './lib/bench-processes.js';
import { testPlanInput, tokenFor, labSmtpSettings } from './lib/plan.js';
import { fmt } from './lib/load.js';
import { startProbeProcess, type ProbeProcess } from './lib/probe-process.js';
import { requirePeers } from '../scripts/peers.mjs';
import { PROBE_TUNING } from '../config/node-runtime.js';

requirePeers(['prometheus-blackbox-exporter']);

const root = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const RESOLVERS = 50;
const FLAGS = PROBE_TUNING.flags.join(' ');
const VARIANTS = [
  { id: 'lean', env: {}, args: ['--checks', 'dns,smtp'], what: `--checks dns,smtp, the command's V8 flags ${FLAGS}` },
  { id: 'lean-defaults', env: { MAILPROBE_NODE_FLAGS: '' }, args: ['--checks', 'dns,smtp'], what: '--checks dns,smtp, MAILPROBE_NODE_FLAGS= (V8 defaults)' },
  { id: 'all', env: {}, args: [], what: "every check the plan enables, the command's V8 flags" },
] as const;
const MB = 1e6;

async function main(): Promise<void> {
  const started = Date.now();
  const dist = existsSync(join(root, 'dist/cli/main.js')); // what startProbeProcess will run
  const pinned = pinLoadGenerator();
  process.stdout.write(
    `bench:footprint — ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}; probe from ${dist ? 'dist/' : 'tsx'}; ${pinned} (here: probes and blackbox_exporter on the servers' core, lab and collector on the load's)\n`,
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

    const collector = await startCollectorProcess({ probes: VARIANTS.map((v) => v.id), role: 'load' });
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
        smtp: labSmtpSettings(mtas.certs.caFile),
        dns: {
          types: ['A', 'AAAA', 'MX'],
          query_timeout: '2s',
          lookup_resolver: world.resolvers.honest.address,
          mta_sts_url: `${world.mtaStsUrl}/.well-known/mta-sts.txt`,
        },
        push: { collectors: [collector.url] },
      },
      collector: { listen: '127.0.0.1:0', tokens: Object.fromEntries(VARIANTS.map((v) => [v.id, hashToken(tokenFor(v.id))])) },
    });
    const probes: (ProbeProcess & (typeof VARIANTS)[number])[] = [];
    for (const v of VARIANTS) {
      const probePlan = { ...plan, probes: { ...plan.probes, push: { collectors: [collector.url], spool_dir: join(dir, `spool-${v.id}`) } } };
      const p = startProbeProcess(dir, probePlan, v.id, tokenFor(v.id), { env: v.env, args: v.args });
      closers.push(() => p.stop());
      probes.push({ ...p, ...v });
    }

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
    // A round still running when blackbox_exporter stops at the end fails: not a reason to crash
    // before the probes are stopped (they would outlive the benchmark).
    const bbRoundQuiet = () => void bbRound().catch(() => undefined);
    bbRoundQuiet();
    const bbTimer = setInterval(bbRoundQuiet, 15_000);
    closers.push(async () => clearInterval(bbTimer));

    /** Results at the collector so far: probe → check type → count. */
    const resultsAt = async (): Promise<Record<string, Record<string, number>>> => {
      const r = await request(`${collector.url}/metrics`);
      const text = await r.body.text();
      const out: Record<string, Record<string, number>> = {};
      for (const m of text.matchAll(/^mailprobe_checks_total\{([^}]*)\} (\d+)/gm)) {
        const labels = m[1] ?? '';
        const probe = /probe="([^"]+)"/.exec(labels)?.[1] ?? '?';
        const type = /type="([a-z]+)"/.exec(labels)?.[1] ?? '?';
        const of = (out[probe] ??= {});
        of[type] = (of[type] ?? 0) + Number(m[2]);
      }
      return out;
    };

    await new Promise((r) => setTimeout(r, WARMUP * 1000));
    for (const p of probes) if (p.child.exitCode !== null) throw new Error(`probe ${p.id} exited with ${p.child.exitCode}: ${p.stderr()}`);
    const before = await resultsAt();
    const bbBefore = { ...bbCounts };
    const cpu0 = probes.map((p) => cpuSecondsOf(p.pid));
    const bbCpu0 = cpuSecondsOf(bb.pid);
    const t0 = performance.now();
    const rss: number[][] = probes.map(() => []);
    const bbRss: number[] = [];
    while (performance.now() - t0 < SECONDS * 1000) {
      for (const [i, p] of probes.entries()) rss[i]?.push(rssOf(p.pid));
      bbRss.push(rssOf(bb.pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu = probes.map((p, i) => cpuSecondsOf(p.pid) - (cpu0[i] ?? 0));
    const bbCpu = cpuSecondsOf(bb.pid) - bbCpu0;
    const after = await resultsAt();
    const bbMax = Math.max(...bbRss);
    const bbAvg = bbRss.reduce((a, b) => a + b, 0) / bbRss.length;
    const bbPct = (100 * bbCpu) / wall;
    process.stdout.write(
      `${RESOLVERS} resolvers × A/AAAA/MX + authoritative + SMTP to 2 IPs, every 15 s; measured ${fmt(wall, 0)} s after ${WARMUP} s warm-up, load average ${loadavg()[0]?.toFixed(2)}\n`,
    );
    process.stdout.write(
      `blackbox_exporter: ${bbCounts.probes - bbBefore.probes} probes (${bbCounts.success - bbBefore.success} succeeded); ` +
        `RSS max ${fmt(bbMax / MB, 1)} MB, mean ${fmt(bbAvg / MB, 1)} MB; CPU ${fmt(bbPct, 2)} % of one core\n`,
    );
    probes.forEach((p, i) => {
      const ran = Object.fromEntries(Object.entries(after[p.id] ?? {}).map(([k, v]) => [k, v - (before[p.id]?.[k] ?? 0)]));
      const total = Object.values(ran).reduce((a, b) => a + b, 0);
      const samples = rss[i] ?? [];
      const max = Math.max(...samples);
      // Steady: the second half of the window (the first may still hold the start-up's garbage).
      const steady = samples.slice(Math.floor(samples.length / 2));
      const steadyMean = steady.reduce((a, b) => a + b, 0) / steady.length;
      const pct = (100 * (cpu[i] ?? 0)) / wall;
      const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
      process.stdout.write(
        `probe ${p.id} (${p.what}): ${total} checks ${JSON.stringify(ran)}; RSS max ${fmt(max / MB, 1)} MB, steady mean ${fmt(steadyMean / MB, 1)} MB ` +
          `(≤ 70 MB: ${met(steadyMean <= 70 * MB)}); CPU ${fmt(pct, 2)} % of one core (≤ 1.5 %: ${met(pct <= 1.5)}); ` +
          `ratio to blackbox_exporter: RSS ${fmt(max / bbMax, 2)}× max, ${fmt(steadyMean / bbAvg, 2)}× mean (≤ 2×: ${met(steadyMean / bbAvg <= 2)}), CPU ${fmt(pct / bbPct, 2)}×\n`,
      );
      if (p.stderr().trim()) process.stdout.write(`  probe ${p.id} stderr (last lines):\n  ${p.stderr().trim().split('\n').slice(-3).join('\n  ')}\n`);
    });
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  }
  process.stdout.write(`done in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:footprint failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
