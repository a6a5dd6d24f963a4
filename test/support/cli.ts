/**
 * Runs `mailprobe …` as its own process, as a user would. (Capturing an in-process command by
 * replacing process.stdout.write also swallows the test runner's own events, which Node 22 sends
 * over stdout.)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

/**
 * `env` entries are added to this process's environment; `undefined` removes one. With
 * `timeoutMs`, a command still running then is killed (status null): for commands that must exit.
 */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  opts: { timeoutMs?: number } = {},
): { status: number | null; stdout: string; stderr: string } {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: merged,
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** {@link runCli} without blocking this process, for commands that talk to servers the test runs in-process. */
export function runCliAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), ...args], { cwd: root, env: merged });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The URL a `mailprobe collector` child prints once it listens (`metrics at URL/metrics`); rejects with its output if it exits first. */
export function collectorUrl(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /metrics at (http:\/\/[^/\s]+)\/metrics/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`collector exited ${code}: ${out}${stderr().slice(-2000)}`)));
  });
}
