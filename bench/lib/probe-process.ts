/**
 * A probe as its own process for benchmarks, run from dist/ when it is built (what `mailprobe`
 * runs in production; tsx's loader would add to its memory), else through tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { serverCommand } from './bench-processes.js';

const root = resolve(import.meta.dirname, '../..');

export interface ProbeProcess {
  child: ChildProcess;
  pid: number;
  /** Whether it runs from dist/ (else tsx). */
  fromDist: boolean;
  /** The last 4000 characters it wrote to stderr. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

export interface ProbeProcessOptions {
  /** More `mailprobe probe` options, such as `['--checks', 'dns,smtp']`. */
  args?: readonly string[];
  /** Node options before the script, such as `['--max-semi-space-size=1']`. */
  node?: readonly string[];
  /** More environment, such as `{ MAILPROBE_NODE_FLAGS: '' }`. */
  env?: Readonly<Record<string, string>>;
}

/**
 * Writes `plan` into `dir` and starts `mailprobe probe` on it as probe `id` in region eu (on the
 * servers' core once the benchmark pinned itself: bench-processes.ts).
 */
export function startProbeProcess(dir: string, plan: object, id: string, token: string, opts: ProbeProcessOptions = {}): ProbeProcess {
  const planFile = join(dir, `plan-${id}.yaml`);
  // JSON is YAML.
  writeFileSync(planFile, JSON.stringify(plan, null, 1));
  const fromDist = existsSync(join(root, 'dist/cli/main.js'));
  const script = fromDist ? [join(root, 'dist/cli/main.js')] : ['--import', 'tsx', join(root, 'cli/main.ts')];
  const args = [...(opts.node ?? []), ...script, 'probe', '--config', planFile, '--id', id, '--region', 'eu', ...(opts.args ?? [])];
  const child = spawn(...serverCommand(process.execPath, args), {
    cwd: dir,
    env: { ...process.env, MAILPROBE_TOKEN: token, MAILPROBE_LOG_LEVEL: 'warn', ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return {
    child,
    pid: child.pid ?? -1,
    fromDist,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
