/**
 * The Node settings each long-running command runs under, applied by the command itself: when
 * the process was started without them (systemd, compose, Kubernetes, the Dockerfile, a shell:
 * none of them need to know), it replaces itself with the same command plus what is missing
 * (process.execve: same PID, same file descriptors and stdio, so a supervisor sees one process).
 * V8 reads its flags and glibc its malloc variables only when a process starts, hence the re-exec.
 *
 * - The probe ({@link PROBE_TUNING}) spends its time waiting for replies: on the footprint
 *   workload (`npm run bench:footprint`) V8's optimising compilers and a 32 MiB young generation
 *   cost it ~17 MB of RSS (their code pages and their compiled code) and bought ~0.35 % of a core.
 *     --max-semi-space-size=1                 young generation 2 × 1 MiB instead of up to 2 × 16
 *     --no-opt --no-maglev --no-sparkplug     the interpreter only (WebAssembly still runs, as the
 *                                             sink's undici needs it)
 *   Not set for the probe because they did not pay there (side by side in one window, RSS of
 *   ~70 MB): MALLOC_ARENA_MAX=1 with or without MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_
 *   and MALLOC_TOP_PAD_, --optimize-for-size, --max-lazy, --v8-pool-size=1,
 *   --bytecode-old-age=1: each within ±0.5 MB, the noise; --single-threaded-gc: +4 MB;
 *   --jitless: no gain to speak of, and it turns WebAssembly off.
 * - The collector and the lab (`mailprobe collector`, `mailprobe start`, {@link SERVER_TUNING}):
 *   the live heap is small (~40 MiB at 100k series), but with Node's defaults RSS was several
 *   times that and climbed under steady load (`npm run bench:memory`, `npm run bench:scrape`):
 *     --max-semi-space-size=2       the young generation grew to 2 × 64 MiB under a push burst and
 *                                   kept the pages; every push allocates short-lived objects only
 *     --v8-pool-size=2              two helper threads (V8's GC and optimising compilers) instead
 *                                   of Node's 4 whatever the CPUs. In a fresh collector's first
 *                                   ~20 000 pushes the compilers move the push path up V8's tiers
 *                                   and full collections mark, both on the helpers; on one core
 *                                   (bench:ingest pins each server to one) they take it from the
 *                                   pushes. Measured over pushes ~5 000-12 000 (bench:ingest's
 *                                   former 4 s warm-up): p99 at saturation 23-30 ms in four rounds
 *                                   with Node's 4, 16.5-23.7 with 2 in the same minutes (max
 *                                   59-61 → 39-52 ms); with only the main thread pinned
 *                                   (`BENCH_PIN=main`) 11-12 ms. After 30 000 pushes (the bench's
 *                                   warm-up now) no difference: 10.3 and 9.3 ms with 2, 9.5 and
 *                                   10.6 with 4 (MAILPROBE_NODE_FLAGS=--max-semi-space-size=2),
 *                                   runs next to each other. bench:scrape the same with both
 *                                   (RSS at 100k series 114-117 MiB, CPU per scrape 90-130 ms).
 *                                   Kept for the first minute of a collector. One helper
 *                                   (`--v8-pool-size=0`, Node's own sizing: 1 on one core) read
 *                                   p99 17-18 ms in the early window, but RSS at 100k series rose
 *                                   ~10 MiB and a scrape cost ~20 % more CPU
 *     MALLOC_ARENA_MAX=1            glibc gives every thread that mallocs an arena (V8's compiler
 *                                   and GC threads, libuv's pool) and keeps its freed memory
 *     MALLOC_MMAP_THRESHOLD_=32768  blocks of 32 KiB and more come from mmap and go back to the
 *                                   system when freed. V8's compiler and parser zones take their
 *                                   memory in such blocks (~25 MiB at their peak while the first
 *                                   pushes get compiled): from the arena, they left it at ~25 MiB
 *                                   for good; now ~9 MiB, and RSS at 100k series ~16 MiB lower
 *                                   (bench:scrape) for the same CPU per result (bench:ingest; a
 *                                   handful of mmap calls per second of steady ingest or scraping).
 *                                   Fixed, so glibc does not raise it to the largest block freed
 *                                   (after the first remote-write body, ~0.5 MiB, such blocks came
 *                                   from the arena and left holes in it)
 *
 * The operator's word wins: a flag given on the command line or in NODE_OPTIONS (by name,
 * whatever its value) and a variable already in the environment are not added;
 * `MAILPROBE_NODE_FLAGS` replaces the command's flag list (space-separated; empty: none);
 * `MAILPROBE_NODE_TUNING=0` adds nothing at all. Without process.execve (Windows) the process
 * runs untuned. The lab's in-process probes keep their host's settings.
 */
export interface NodeTuning {
  /** V8 flags. */
  readonly flags: readonly string[];
  /** Environment read by the C library when the process starts. */
  readonly env: Readonly<Record<string, string>>;
}

export const PROBE_TUNING: NodeTuning = { flags: ['--max-semi-space-size=1', '--no-opt', '--no-maglev', '--no-sparkplug'], env: {} };
export const SERVER_TUNING: NodeTuning = {
  flags: ['--max-semi-space-size=2', '--v8-pool-size=2'],
  env: { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '32768' },
};

/** Set in the environment of the re-executed process: it re-executes once, whatever Node made of the flags. */
const TUNED = 'MAILPROBE_NODE_TUNED';

const flagName = (f: string): string => (f.split('=')[0] ?? f).replace(/_/g, '-');

/** What a re-exec would add to this process (nothing once re-executed), or the problem with MAILPROBE_NODE_FLAGS. */
export function missingTuning(
  tuning: NodeTuning,
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
): { flags: string[]; env: Record<string, string> } | { error: string } {
  if (env.MAILPROBE_NODE_TUNING === '0' || env[TUNED] !== undefined) return { flags: [], env: {} };
  let flags = [...tuning.flags];
  if (env.MAILPROBE_NODE_FLAGS !== undefined) {
    flags = env.MAILPROBE_NODE_FLAGS.split(/\s+/).filter(Boolean);
    const bad = flags.find((f) => !/^--[a-z0-9_-]+(=\S+)?$/.test(f));
    if (bad !== undefined) return { error: `MAILPROBE_NODE_FLAGS: "${bad}" is not a --flag or --flag=value` };
  }
  const given = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  return {
    flags: flags.filter((f) => !given.has(flagName(f))),
    env: Object.fromEntries(Object.entries(tuning.env).filter(([k]) => env[k] === undefined)),
  };
}

/**
 * Replaces this process with itself plus the missing settings; returns when nothing is missing
 * or re-exec is impossible, or with the problem with MAILPROBE_NODE_FLAGS for the caller to
 * report. Call before the command loads its modules.
 */
export function applyTuning(tuning: NodeTuning): string | undefined {
  const missing = missingTuning(tuning);
  // Re-executed: the marker is not passed on to the processes this one starts (they tune themselves).
  delete process.env[TUNED];
  if ('error' in missing) return missing.error;
  if ((missing.flags.length === 0 && Object.keys(missing.env).length === 0) || typeof process.execve !== 'function') return undefined;
  try {
    // The flags first, so the Node options the process already had (--import …) still win.
    process.execve(process.execPath, [process.execPath, ...missing.flags, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      ...missing.env,
      [TUNED]: '1',
    });
  } catch {
    // Not replaced (a sandbox refusing execve): run untuned rather than not at all.
  }
  return undefined;
}

/** The settings in effect, for the start-up log: flags, the tuning's variables, V8's heap limit (it includes the young generation). */
export function runtimeSettings(tuning: NodeTuning): {
  nodeFlags: string[];
  nodeOptions: string | undefined;
  env: Record<string, string | undefined>;
  heapLimitMiB: number;
} {
  return {
    nodeFlags: [...process.execArgv],
    nodeOptions: process.env.NODE_OPTIONS,
    env: Object.fromEntries(Object.keys(tuning.env).map((k) => [k, process.env[k]])),
    // node:v8 read here only (the collector's start line): loaded at the top it cost every probe
    // its heap-snapshot and promise-hook modules.
    heapLimitMiB: Math.round(process.getBuiltinModule('node:v8').getHeapStatistics().heap_size_limit / 2 ** 20),
  };
}
