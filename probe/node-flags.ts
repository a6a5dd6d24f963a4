/**
 * The V8 flags a probe runs under, applied by `mailprobe probe` itself (cli/main.ts calls
 * {@link execWithProbeFlags} before it loads the probe): when the process was started without them
 * (systemd, compose, Kubernetes, the Dockerfile, a shell: none of them need to know), it replaces
 * itself with the same command plus the flags (process.execve: same pid, same stdio, same
 * environment). V8 reads these flags only at start. In-process probes (the lab) keep their host's.
 *
 * A probe spends its time waiting for replies: on the footprint workload (`npm run
 * bench:footprint`) V8's optimising compilers and a 32 MiB young generation cost it ~17 MB of RSS
 * (their code pages and their compiled code) and bought ~0.35 % of a core of CPU.
 *   --max-semi-space-size=1                      young generation 2 × 1 MiB instead of up to 2 × 16
 *   --no-opt --no-maglev --no-sparkplug          the interpreter only (WebAssembly still runs, as
 *                                                undici in the auth check and the sink needs it)
 * MAILPROBE_NODE_FLAGS replaces the list (space-separated; empty: none, V8's defaults).
 */

export const PROBE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--no-opt', '--no-maglev', '--no-sparkplug'];

/** The flags from MAILPROBE_NODE_FLAGS (default {@link PROBE_NODE_FLAGS}), or a problem with the variable. */
export function probeNodeFlags(env: NodeJS.ProcessEnv = process.env): { flags: string[] } | { error: string } {
  const v = env.MAILPROBE_NODE_FLAGS;
  if (v === undefined) return { flags: [...PROBE_NODE_FLAGS] };
  const flags = v.split(/\s+/).filter(Boolean);
  const bad = flags.find((f) => !/^--[a-z0-9-]+(=\S+)?$/.test(f));
  if (bad !== undefined) return { error: `MAILPROBE_NODE_FLAGS: "${bad}" is not a --flag or --flag=value` };
  return { flags };
}

/**
 * Re-executes this process with the probe's flags when one is missing from its command line;
 * returns (doing nothing) when all are there or Node cannot exec (process.execve: Node 22.15+).
 * Returns the problem with MAILPROBE_NODE_FLAGS, if any, for the caller to report.
 */
export function execWithProbeFlags(): string | undefined {
  const r = probeNodeFlags();
  if ('error' in r) return r.error;
  const missing = r.flags.filter((f) => !process.execArgv.includes(f));
  // Once only, whatever Node made of the flags.
  if (missing.length === 0 || typeof process.execve !== 'function' || process.env[EXECED] !== undefined) return undefined;
  // The flags first, so the Node options the process already had (--import …) still win.
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, [EXECED]: '1' });
}

/** Set in the environment of the re-executed process. */
const EXECED = 'MAILPROBE_NODE_FLAGS_APPLIED';
