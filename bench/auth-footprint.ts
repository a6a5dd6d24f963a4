/**
 * `npm run bench:auth-footprint`: what the auth check costs a probe's memory, now that SPF and
 * MTA-STS are the probe's own code (probe/auth/) instead of mailauth's modules. Three probe
 * processes run side by side in one window against the lab (its 4 resolvers × A/AAAA/MX, SMTP to
 * the 2 server IPs, auth: SPF for both IPs, DKIM, DMARC, MTA-STS, TLSA), pushing to a collector:
 *
 * - `dns,smtp`: `--checks dns,smtp` (the base);
 * - `dns,smtp,auth`: `--checks dns,smtp,auth` as it is now;
 * - `…before`: the same with mailauth's SPF and MTA-STS modules and undici (its MTA-STS fetch)
 *   preloaded (`node --require`), which is what the auth check loaded before: the peer for the
 *   "before" figure, in the same run.
 *
 * RSS is sampled from /proc every second after a warm-up; printed per probe as the median and max,
 * and the auth check's increment over the base for both variants. RSS moves by several MB with
 * each GC cycle, so the modules are also measured alone, which is steadier: a fresh node loads
 * dist/probe/checks/auth.js (with or without those modules), collects garbage and
 * reports RSS and V8 heap used, the median of 5 processes each.
 * Probes run from dist/ (built by the npm script), with the V8 flag the README recommends.
 *
 * The "before" probe is a lower bound: undici compiles its WebAssembly parser at its first request,
 * which a preload does not make.
 *
 * Env: BENCH_SECONDS (measured, default 40), BENCH_WARMUP (default 15).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashToken } from '../collector/plugins/auth.js';
import { startDnsWorld } from '../lab/dns/world.js';
import { startMtas } from '../lab/mta/index.js';
import { cpuSecondsOf, rssOf, startCollectorProcess } from './lib/bench-processes.js';
import { fmt } from './lib/load.js';
import { testPlanInput, tokenFor, labSmtpSettings } from './lib/plan.js';
import { startProbeProcess, type ProbeProcess } from './lib/probe-process.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 40);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 15);
const MB = 1e6;
const require = createRequire(import.meta.url);
/** The young-generation flag the README recommends for a probe (as bench:footprint runs it). */
const FLAGS = ['--max-semi-space-size=1'];
/** What the auth check loaded before: mailauth's SPF and MTA-STS modules, and undici for the policy. */
const BEFORE_MODULES = ['mailauth/lib/spf/index.js', 'mailauth/lib/mta-sts.js', 'undici'].map((m) => require.resolve(m));
const VARIANTS = [
  { id: 'p-base', what: 'dns,smtp', checks: 'dns,smtp', node: FLAGS },
  { id: 'p-auth', what: 'dns,smtp,auth', checks: 'dns,smtp,auth', node: FLAGS },
  {
    id: 'p-before',
    what: "dns,smtp,auth + mailauth's spf/mta-sts and undici preloaded (before)",
    checks: 'dns,smtp,auth',
    node: [...FLAGS, ...BEFORE_MODULES.flatMap((m) => ['--require', m])],
  },
] as const;

const root = resolve(import.meta.dirname, '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** RSS and heap used (MB, medians of 5 fresh processes) once `modules` are loaded and garbage is collected. */
function loadedAlone(modules: readonly string[]): { rss: number; heap: number } {
  const runs = Array.from({ length: 5 }, () => {
    const script = `(async () => { for (const m of ${JSON.stringify(modules)}) await import(m); globalThis.gc(); const u = process.memoryUsage(); console.log(JSON.stringify({ rss: u.rss, heap: u.heapUsed })); })()`;
    return JSON.parse(execFileSync(process.execPath, [...FLAGS, '--expose-gc', '-e', script], { encoding: 'utf8' })) as { rss: number; heap: number };
  });
  return { rss: median(runs.map((r) => r.rss)) / MB, heap: median(runs.map((r) => r.heap)) / MB };
}

async function main(): Promise<void> {
  const authModule = join(root, 'dist/probe/checks/auth.js');
  const alone = {
    bare: loadedAlone([]),
    now: loadedAlone([authModule]),
    before: loadedAlone([authModule, ...BEFORE_MODULES]),
  };
  process.stdout.write(
    `modules alone (median of 5 processes, after gc): bare node RSS ${fmt(alone.bare.rss, 1)} MB, heap ${fmt(alone.bare.heap, 1)} MB; ` +
      `auth check now RSS ${fmt(alone.now.rss, 1)} MB, heap ${fmt(alone.now.heap, 1)} MB; with mailauth's SPF and MTA-STS and undici (before) RSS ${fmt(alone.before.rss, 1)} MB, heap ${fmt(alone.before.heap, 1)} MB ` +
      `→ those modules cost ${fmt(alone.before.rss - alone.now.rss, 1)} MB RSS, ${fmt(alone.before.heap - alone.now.heap, 1)} MB heap\n`,
  );
  const closers: (() => Promise<void>)[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-auth-footprint-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const world = await startDnsWorld({ initial: { ttl: 30, serve: 'both' }, mtaStsId: '20261204', tlsa: true });
    closers.push(() => world.close());
    const mtas = await startMtas({ mailHost: 'mail.company.test', domain: 'company.test' });
    closers.push(() => mtas.close());
    const collector = await startCollectorProcess({ probes: VARIANTS.map((v) => v.id), role: 'load' });
    closers.push(() => collector.stop());
    const plan = testPlanInput({
      cutover: {
        servers: [
          { ip: '127.0.0.2', side: 'old', port: mtas.old.port },
          { ip: '127.0.0.3', side: 'new', port: mtas.new.port },
        ],
      },
      probes: {
        interval: '15s',
        window_interval: '15s',
        timeout: '10s',
        resolvers: Object.values(world.resolvers).map((r) => r.address),
        authoritative: [world.auth.address],
        smtp: labSmtpSettings(mtas.certs.caFile),
        dns: {
          types: ['A', 'AAAA', 'MX'],
          query_timeout: '2s',
          lookup_resolver: world.resolvers.honest.address,
          mta_sts_url: `${world.mtaStsUrl}/.well-known/mta-sts.txt`,
        },
      },
      collector: { listen: '127.0.0.1:0', tokens: Object.fromEntries(VARIANTS.map((v) => [v.id, hashToken(tokenFor(v.id))])) },
    });
    const probes: (ProbeProcess & (typeof VARIANTS)[number])[] = [];
    for (const v of VARIANTS) {
      const probePlan = { ...plan, probes: { ...plan.probes, push: { collectors: [collector.url], spool_dir: join(dir, `spool-${v.id}`) } } };
      const p = startProbeProcess(dir, probePlan, v.id, tokenFor(v.id), { node: v.node, args: ['--checks', v.checks] });
      closers.push(() => p.stop());
      probes.push({ ...p, ...v });
    }
    process.stdout.write(
      `bench:auth-footprint — Node ${process.version}, probes from ${probes[0]?.fromDist ? 'dist/' : 'tsx'}, load average ${loadavg()[0]?.toFixed(2)}; warm-up ${WARMUP} s, measuring ${SECONDS} s\n`,
    );
    await new Promise((r) => setTimeout(r, WARMUP * 1000));
    for (const p of probes) if (p.child.exitCode !== null) throw new Error(`probe ${p.id} exited with ${p.child.exitCode}: ${p.stderr()}`);
    const cpu0 = probes.map((p) => cpuSecondsOf(p.pid));
    const rss: number[][] = probes.map(() => []);
    const t0 = performance.now();
    while (performance.now() - t0 < SECONDS * 1000) {
      for (const [i, p] of probes.entries()) rss[i]?.push(rssOf(p.pid));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const wall = (performance.now() - t0) / 1000;
    const steady = rss.map(median);
    probes.forEach((p, i) => {
      const pct = (100 * (cpuSecondsOf(p.pid) - (cpu0[i] ?? 0))) / wall;
      process.stdout.write(
        `probe ${p.what}: RSS median ${fmt((steady[i] ?? 0) / MB, 1)} MB, min ${fmt(Math.min(...(rss[i] ?? [])) / MB, 1)} MB, max ${fmt(Math.max(...(rss[i] ?? [])) / MB, 1)} MB; CPU ${fmt(pct, 2)} % of one core\n`,
      );
      if (p.stderr().trim()) process.stdout.write(`  stderr (last lines):\n  ${p.stderr().trim().split('\n').slice(-3).join('\n  ')}\n`);
    });
    const [base = 0, now = 0, before = 0] = steady;
    process.stdout.write(
      `auth check over dns,smtp: now +${fmt((now - base) / MB, 1)} MB, with the modules it loaded before +${fmt((before - base) / MB, 1)} MB; saved ${fmt((before - now) / MB, 1)} MB\n`,
    );
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:auth-footprint failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
