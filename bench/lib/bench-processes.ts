/**
 * Separate processes for benchmarks and drills: a mailprobe collector as its own Node process
 * (the way operators run it) and a Prometheus Pushgateway (Debian package), both on
 * 127.0.0.1:<free port>, with their RSS and CPU time read from /proc.
 *
 *   const c = await startCollectorProcess({ probes: ['p-1', 'p-2'] });
 *   await c.stop();
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { hashToken } from '../../collector/plugins/auth.js';
import { tokenFor, writePlanFile } from './plan.js';
import { freePort } from '../../lab/ports.js';

const root = resolve(import.meta.dirname, '../..');

/** The core servers under test run on once {@link pinLoadGenerator} was called (benchmarks); tests never pin. */
const SERVER_CORE = 0;
const LOAD_CORE = 1;
let pinServers = false;
/** BENCH_PIN=main: servers start unpinned and only their main thread is pinned, once they are up. */
let pinMainOnly = false;

/**
 * Pins this process (the load generator, all its threads) to core 1 and every server the
 * benchmark starts afterwards (collector, Pushgateway) to core 0 with `taskset`, so the load
 * generator never takes the server's core. Off with BENCH_PIN=0, or without taskset or a
 * second core. BENCH_PIN=main, a diagnostic: only each server's main thread goes to core 0 (its
 * helper threads, V8's garbage-collector and compiler helpers among them, may run on core 1 beside the load).
 * Returns what it did, for the benchmark's header.
 */
export function pinLoadGenerator(): string {
  if (process.env.BENCH_PIN === '0') return 'not pinned (BENCH_PIN=0)';
  if (availableParallelism() < 2) return 'not pinned (one core)';
  const r = spawnSync('taskset', ['-a', '-cp', String(LOAD_CORE), String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) return `not pinned (taskset: ${(r.error?.message ?? r.stderr).trim()})`;
  pinServers = true;
  pinMainOnly = process.env.BENCH_PIN === 'main';
  return pinMainOnly
    ? `load generator pinned to core ${LOAD_CORE}, servers' main threads only to core ${SERVER_CORE} (BENCH_PIN=main, taskset)`
    : `load generator pinned to core ${LOAD_CORE}, servers to core ${SERVER_CORE} (taskset)`;
}

/**
 * The command line of a server under test, under `taskset -c 0` once pinning is on; with
 * `role: 'load'`, of a peer that belongs to the load (bench:footprint's collector), on the load
 * generator's core. Under BENCH_PIN=main a server starts unpinned ({@link pinServerMainThread}).
 */
export function serverCommand(cmd: string, args: string[], role: 'server' | 'load' = 'server'): [string, string[]] {
  if (!pinServers || (pinMainOnly && role === 'server')) return [cmd, args];
  return ['taskset', ['-c', String(role === 'server' ? SERVER_CORE : LOAD_CORE), cmd, ...args]];
}

/** Under BENCH_PIN=main, pins the main thread of a server that is up (its other threads exist and keep every core). */
function pinServerMainThread(pid: number): void {
  if (!pinMainOnly) return;
  const r = spawnSync('taskset', ['-cp', String(SERVER_CORE), String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -cp ${SERVER_CORE} ${pid}: ${(r.error?.message ?? r.stderr).trim()}`);
}

/**
 * Runs a load tool (wrk, curl) to its end, on the load generator's core once pinning is on: its
 * exit code and all it printed (read on 'close', after the pipes are drained).
 */
export function runLoadTool(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, argv] = serverCommand(bin, args, 'load');
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('close', (code) => ok({ code, stdout, stderr }));
  });
}

/** A port free right now on 127.0.0.1 (for peers that cannot bind port 0 and report it). */
export { freePort };

/** Resident set size of a process in bytes (VmRSS), or NaN once it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used so far, in seconds. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces, start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return ticks / 100;
}

export interface PeerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Last lines of its stderr (for error messages). */
  stderr(): string;
  stop(): Promise<void>;
}

function tail(child: ChildProcess): () => string {
  let buf = '';
  child.stderr?.on('data', (d: Buffer) => {
    buf = (buf + d.toString()).slice(-4000);
  });
  return () => buf;
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export interface CollectorProcessOptions {
  /** Probe ids to issue tokens for (token of each: `token-<id>`, see tokenFor). */
  probes: readonly string[];
  /** Overrides of the plan's collector section (e.g. max_series_per_probe). */
  collector?: Record<string, unknown>;
  /** Log level of the child. Default warn (an info line per rejection is noise at bench rates). */
  logLevel?: string;
  /**
   * Run through test/support/drill-collector-main.ts with this request timeout instead of the
   * `mailprobe collector` command (whose timeout is the product's 30 s).
   */
  requestTimeoutMs?: number;
  /**
   * Run through test/support/drill-collector-main.ts with --expose-gc, so {@link
   * CollectorProcess.liveBytes} can ask for the memory still in use after a full collection.
   */
  liveBytes?: boolean;
  /** Which core it runs on once pinning is on: the servers' (default) or the load generator's. */
  role?: 'server' | 'load';
  /**
   * Run the compiled collector (`node dist/cli/main.js collector`, as `npm start` does) instead of
   * the sources under tsx, whose loader alone holds ~50 MiB: for figures about the process's
   * memory. Needs `npm run build` first.
   */
  dist?: boolean;
}

export interface CollectorProcess extends PeerProcess {
  planFile: string;
  /**
   * The child's V8 heap in use plus its external memory (Buffers) right after a full garbage
   * collection (needs `liveBytes: true`): what a leak grows, unlike RSS, which V8 lets grow
   * with free heap after a burst of garbage and returns when it likes (Node 24 far more than 20).
   */
  liveBytes(): Promise<number>;
}

/** The compiled CLI, or an error saying how to get it. */
function distMain(): string {
  const main = join(root, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  return main;
}

/** A collector as a child process (`node --import tsx cli/main.ts collector`, or from dist/). */
export async function startCollectorProcess(opts: CollectorProcessOptions): Promise<CollectorProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-bench-'));
  const planFile = writePlanFile(dir, {
    collector: {
      listen: '127.0.0.1:0',
      tokens: Object.fromEntries(opts.probes.map((id) => [id, hashToken(tokenFor(id))])),
      // Load generators and drills push far faster per probe than a probe does.
      push_rate: 100_000,
      push_burst: 100_000,
      ...opts.collector,
    },
  });
  const drillMain = ['--import', 'tsx', join(root, 'test/support/drill-collector-main.ts'), planFile, String(opts.requestTimeoutMs ?? 0)];
  const args = opts.liveBytes
    ? ['--expose-gc', ...drillMain]
    : opts.requestTimeoutMs === undefined
      ? [...(opts.dist ? [distMain()] : ['--import', 'tsx', join(root, 'cli/main.ts')]), 'collector', '--config', planFile, '--listen', '127.0.0.1:0']
      : drillMain;
  const child = spawn(...serverCommand(process.execPath, args, opts.role), {
    cwd: root,
    env: { ...process.env, MAILPROBE_LOG_LEVEL: opts.logLevel ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr = tail(child);
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`collector did not start in 30 s: ${stderr()}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/[^\s/]+)\/metrics/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`collector exited with ${code}: ${stderr()}`));
    });
  });
  if (opts.role !== 'load') pinServerMainThread(child.pid ?? -1);
  return {
    url,
    pid: child.pid ?? -1,
    child,
    planFile,
    stderr,
    liveBytes: () =>
      new Promise<number>((ok, fail) => {
        if (!opts.liveBytes) return fail(new Error('start the collector process with liveBytes: true'));
        let out = '';
        const timer = setTimeout(() => fail(new Error(`no live-bytes answer in 30 s: ${stderr()}`)), 30_000);
        const onData = (d: Buffer) => {
          out += d.toString();
          const m = /^live-bytes (\d+)$/m.exec(out);
          if (!m?.[1]) return;
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          ok(Number(m[1]));
        };
        child.stdout?.on('data', onData);
        child.kill('SIGUSR2');
      }),
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PushgatewayOptions {
  /** Pass `--push.disable-consistency-check`. */
  disableConsistencyCheck?: boolean;
  binary?: string;
}

/** A Prometheus Pushgateway on 127.0.0.1:<free port>, without persistence. */
export async function startPushgateway(opts: PushgatewayOptions = {}): Promise<PeerProcess> {
  const port = await freePort();
  const args = [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'];
  if (opts.disableConsistencyCheck) args.push('--push.disable-consistency-check');
  const child = spawn(...serverCommand(opts.binary ?? 'prometheus-pushgateway', args), { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = tail(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pushgateway exited with ${child.exitCode}: ${stderr()}`);
    try {
      const r = await request(`${url}/-/ready`);
      await r.body.dump();
      if (r.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`pushgateway not ready in 15 s: ${stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  pinServerMainThread(child.pid ?? -1);
  return { url, pid: child.pid ?? -1, child, stderr, stop: () => stopChild(child) };
}

/** A Prometheus blackbox_exporter (Debian package) on 127.0.0.1:<free port> with the given config. */
export async function startBlackboxExporter(configYaml: string, binary = 'prometheus-blackbox-exporter'): Promise<PeerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-blackbox-'));
  const file = join(dir, 'blackbox.yml');
  writeFileSync(file, configYaml);
  const port = await freePort();
  const child = spawn(...serverCommand(binary, [`--config.file=${file}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn']), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = tail(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`blackbox_exporter exited with ${child.exitCode}: ${stderr()}`);
    try {
      const r = await request(`${url}/-/healthy`);
      await r.body.dump();
      if (r.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`blackbox_exporter not ready in 15 s: ${stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    pid: child.pid ?? -1,
    child,
    stderr,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
