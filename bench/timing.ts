/**
 * `npm run bench:timing`: how exactly does the smtp check measure? The lab's old MTA (in its own
 * process) delays its greeting by an injected amount and records when it actually wrote it
 * (from the TCP accept); the probe's smtp check (probe/checks/smtp.ts) measures the banner phase.
 * Peer on the same target in the same run: blackbox_exporter's tcp prober (Debian package) with
 * an `expect ^220` / QUIT dialogue, whose only figure is probe_duration_seconds.
 *
 * Error = measured − the greeting delay the server recorded for that connection. `tc netem` on a
 * veth pair between network namespaces is used when the kernel has sch_netem (not on every
 * machine; the header says whether it ran).
 *
 * Env: BENCH_REPS (per delay and measurer, default 5).
 */
import { fork, spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { request } from 'undici';
import { smtp, type SmtpSettings } from '../probe/checks/smtp.js';
import { startBlackboxExporter } from './lib/bench-processes.js';
import { testCtx } from './lib/smtp-support.js';
import { fmt, quantile, table } from './lib/load.js';
import { requirePeers } from '../scripts/peers.mjs';

requirePeers(['prometheus-blackbox-exporter', 'ip']);

const REPS = Number(process.env.BENCH_REPS ?? 5);
const DELAYS_MS = [150, 300, 600, 1000];
const root = resolve(import.meta.dirname, '..');

type Reply = { ready: true; old: { ip: string; port: number }; caFile: string } | { ok: true } | { delays: number[] };

function netemAvailable(): boolean {
  // A throwaway namespace: probing the kernel without touching the host's interfaces.
  const ns = `mpbench-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) return false;
  try {
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return spawnSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).status === 0;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const netem = netemAvailable();
  process.stdout.write(
    `bench:timing — ${cpus().length} CPUs, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}; ` +
      `tc netem: ${netem ? 'available' : 'NOT available in this kernel (sch_netem missing): only server-side delays are injected'}\n`,
  );
  const child = fork(resolve(root, 'bench/lib/mta-child.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = () => new Promise<Reply>((r) => child.once('message', (m) => r(m as Reply)));
  const stopChild = () => {
    if (child.connected) child.send({ stop: true });
  };
  try {
    const ready = await next();
    if (!('ready' in ready)) throw new Error('mta child did not start');
    const target = { ip: ready.old.ip, side: 'old' as const, port: ready.old.port, mode: 'rcpt' as const };
    const settings: SmtpSettings = {
      mailHost: 'mail.company.test',
      mode: 'rcpt',
      tls: 'required',
      from: 'probe@company.test',
      to: 'postmaster@company.test',
      helo: 'probe.company.test',
      caFile: ready.caFile,
      connectTimeoutMs: 3000,
      bannerTimeoutMs: 5000,
      commandTimeoutMs: 5000,
    };
    const bb = await startBlackboxExporter(
      'modules:\n  smtp_banner:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      preferred_ip_protocol: ip4\n      query_response:\n        - expect: "^220 "\n        - send: "QUIT"\n',
    );
    const lastDelay = async (): Promise<number> => {
      child.send({ delays: true });
      const r = await next();
      return 'delays' in r ? (r.delays[r.delays.length - 1] ?? Number.NaN) : Number.NaN;
    };
    const rows: string[][] = [];
    const summary = { probe: [] as number[], bb: [] as number[] };
    try {
      for (const d of DELAYS_MS) {
        child.send({ fault: { kind: 'slow-banner', ms: d } });
        await next();
        const errProbe: number[] = [];
        const errBb: number[] = [];
        const truth: number[] = [];
        for (let i = 0; i < REPS; i++) {
          const r = await smtp(target, settings, testCtx());
          const actual = await lastDelay();
          truth.push(actual);
          if (!r.ok || r.phases.banner === undefined) throw new Error(`smtp check failed: ${r.code} ${r.message}`);
          errProbe.push(r.phases.banner * 1000 - actual);

          const b = await request(`${bb.url}/probe?module=smtp_banner&target=${target.ip}:${target.port}`);
          const text = await b.body.text();
          const actualBb = await lastDelay();
          const dur = Number(/^probe_duration_seconds (\S+)$/m.exec(text)?.[1]);
          if (!/^probe_success 1$/m.test(text)) throw new Error(`blackbox probe failed:\n${text.slice(0, 500)}`);
          errBb.push(dur * 1000 - actualBb);
        }
        summary.probe.push(...errProbe);
        summary.bb.push(...errBb);
        const abs = (xs: number[]) => xs.map(Math.abs);
        rows.push([
          `${d} ms`,
          fmt(quantile(truth, 0.5), 2),
          fmt(quantile(errProbe, 0.5), 2),
          fmt(quantile(abs(errProbe), 1), 2),
          fmt(quantile(errBb, 0.5), 2),
          fmt(quantile(abs(errBb), 1), 2),
        ]);
      }
    } finally {
      await bb.stop();
    }
    process.stdout.write(
      `${table(['injected banner delay', 'server-recorded ms (median)', 'smtp check error ms (median)', 'smtp check |error| max', 'blackbox tcp error ms (median)', 'blackbox |error| max'], rows)}\n`,
    );
    const medAbs = (xs: number[]) => quantile(xs.map(Math.abs), 0.5);
    process.stdout.write(
      `overall: smtp check median |error| ${fmt(medAbs(summary.probe), 2)} ms (target within 2 ms: ${medAbs(summary.probe) <= 2 ? 'met' : 'NOT met'}, max ${fmt(quantile(summary.probe.map(Math.abs), 1), 2)} ms); ` +
        `blackbox_exporter probe_duration median |error| ${fmt(medAbs(summary.bb), 2)} ms (its figure also holds connect and QUIT)\n`,
    );
  } finally {
    stopChild();
    await new Promise((r) => setTimeout(r, 200));
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  process.stdout.write(`done in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:timing failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
