/**
 * Memory settings of the long-running server commands (`mailprobe collector`, `mailprobe start`),
 * applied by re-executing the same process image (process.execve: same PID, same file
 * descriptors, so systemd, Docker and Kubernetes see one process) before anything is loaded.
 *
 * Why: the collector's live heap is small (~40 MiB at 100k series), but with Node's defaults its
 * RSS was several times that, and it climbed under steady load:
 *  - V8's young generation grows to 2 × 64 MiB semi-spaces under a push burst and keeps the
 *    pages (`--max-semi-space-size`, MiB): every push allocates short-lived objects, none of them
 *    live long, so a small nursery costs a few more scavenges and no old-space growth;
 *  - glibc gives every thread that calls malloc an arena of its own (V8's compiler and GC helper
 *    threads, libuv's pool) and keeps their freed memory: 4 arenas × ~25 MiB, more over time
 *    (`MALLOC_ARENA_MAX=1`: one arena, whose free top is returned to the system);
 *  - glibc raises its mmap threshold to the largest block freed, so after the first remote-write
 *    request body (~0.5 MiB) such blocks come from the arena and leave holes in it
 *    (`MALLOC_MMAP_THRESHOLD_=131072`, its initial value, fixed: large blocks stay mmapped and go
 *    back to the system when freed; socket reads of 64 KiB stay in the arena).
 * Both can only be set when the process starts, hence the re-exec. Measured by
 * `npm run bench:memory` and `npm run bench:scrape` (README, Performance).
 *
 * A flag or variable the operator already set (command line, NODE_OPTIONS, environment) wins;
 * MAILPROBE_NODE_TUNING=0 runs with Node's defaults. Without process.execve (Windows) the process
 * runs untuned.
 */
import { getHeapStatistics } from 'node:v8';

/** V8 flags of the server commands. */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
/** Environment of the server commands (read by glibc's malloc when the process starts). */
export const SERVER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072' };

const flagName = (f: string): string => f.split('=')[0]?.replace(/_/g, '-') ?? f;

/** What a re-exec would add: the flags and variables not set by the operator. */
export function missingTuning(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
): { flags: string[]; env: Record<string, string> } {
  if (env.MAILPROBE_NODE_TUNING === '0') return { flags: [], env: {} };
  const given = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  return {
    flags: SERVER_NODE_FLAGS.filter((f) => !given.has(flagName(f))),
    env: Object.fromEntries(Object.entries(SERVER_ENV).filter(([k]) => env[k] === undefined)),
  };
}

/**
 * Replaces this process with itself plus the missing settings (returns only when nothing is
 * missing or re-exec is impossible). Call before loading the server's modules.
 */
export function applyServerTuning(): void {
  const missing = missingTuning();
  if (missing.flags.length === 0 && Object.keys(missing.env).length === 0) return;
  if (typeof process.execve !== 'function') return;
  try {
    process.execve(process.execPath, [process.execPath, ...missing.flags, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      ...missing.env,
    });
  } catch {
    // Not replaced (a sandbox refusing execve): run untuned rather than not at all.
  }
}

/** The settings in effect, for the start-up log: flags, malloc settings, V8's heap limit (it includes the young generation). */
export function runtimeSettings(): { nodeFlags: string[]; nodeOptions: string | undefined; env: Record<string, string | undefined>; heapLimitMiB: number } {
  return {
    nodeFlags: [...process.execArgv],
    nodeOptions: process.env.NODE_OPTIONS,
    env: Object.fromEntries(Object.keys(SERVER_ENV).map((k) => [k, process.env[k]])),
    heapLimitMiB: Math.round(getHeapStatistics().heap_size_limit / 2 ** 20),
  };
}
