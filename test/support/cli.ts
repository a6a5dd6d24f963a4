/**
 * Runs `mailprobe …` as its own process, as a user would. (Capturing an in-process command by
 * replacing process.stdout.write also swallows the test runner's own events, which Node 22 sends
 * over stdout.)
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

/**
 * `env` entries are added to this process's environment; `undefined` removes one. With
 * `timeoutMs`, a command still running then is killed (status null): for commands that must exit.
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, opts: { timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), ...args], { cwd: root, encoding: 'utf8', env: merged, ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
