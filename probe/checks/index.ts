/**
 * The check registry: check type → the probe side of its definition in `probe/checks/<type>.ts`
 * (targets, the settings object its runs get, the run). The type's contract (result schema,
 * settings schema, failed results, metric mapping) is in `protocol/checks/<type>.ts`, registered
 * in `CHECK_DEFS` (`protocol/checks/index.ts`), from which config/schema.ts composes the plan;
 * {@link CHECKS} must name every type of `CHECK_DEFS` and nothing else, or this file does not
 * compile. docs/adding-a-check.md walks through adding one.
 *
 * Each entry loads its check's module on demand (a dynamic import), so a probe loads only the
 * modules of the check types it runs: `--checks dns,smtp` loads no smtp-server and no IMAP
 * client, and no check type loads mailauth but the round trip's sink in the probe (auth has its own
 * SPF and MTA-STS code in probe/auth/). The runtime loads every entry (or those named with
 * `--checks`) at start, before the first round ({@link loadChecks}); the round-trip check loads
 * its sink at its first run, and only when the sink runs in the probe.
 */
import type { PlanConfig } from '../../config/schema.js';
import { CHECK_TYPES, failedResults, type CheckType } from '../../protocol/checks/index.js';
import type { FailedRun } from '../../protocol/checks/common.js';
import type { CheckContext, CheckOutput, CheckSpec } from '../check.js';

/**
 * A spec with its target and settings types erased behind closures, so specs of different
 * types sit in one registry without casts.
 */
export interface RegisteredCheck<K extends CheckType = CheckType> {
  readonly type: K;
  /** The check types whose results its runs read through ctx.history. */
  readonly reads: readonly CheckType[];
  /** The runs of one scheduling round: one per target, keyed stably. */
  jobs(plan: PlanConfig): RegisteredJob[];
  timeoutMs(plan: PlanConfig): number;
  /** What keeps the check from running at all, known at start (`what: why` lines). */
  setupProblems(plan: PlanConfig, env: NodeJS.ProcessEnv): string[];
}

export interface RegisteredJob {
  readonly key: string;
  run(ctx: CheckContext): Promise<CheckOutput>;
  /** The failed results of this target when a run returned none of its own. */
  failed(run: FailedRun): ReturnType<typeof failedResults>;
}

/** Check types the runtime may run (a subset: tests, `--check-module`). */
export type CheckRegistry = Readonly<{ [K in CheckType]?: RegisteredCheck<K> }>;

export function register<K extends CheckType, Settings>(spec: CheckSpec<K, Settings>): RegisteredCheck<K> {
  return {
    type: spec.type,
    reads: spec.reads ?? [],
    jobs: (plan) =>
      spec.targets(plan).map(({ key, target, settings }) => ({
        key,
        run: (ctx: CheckContext) => spec.run(target, settings, ctx),
        failed: (run: FailedRun) => failedResults(spec.type, target, run),
      })),
    timeoutMs: (plan) => spec.timeoutMs?.(plan) ?? plan.probes.timeout,
    setupProblems: (plan, env) => spec.setupProblems?.(plan, env) ?? [],
  };
}

/** Every check the probe may run, loaded on demand: one entry per check type, no more, no less. */
export const CHECKS: { readonly [K in CheckType]: () => Promise<RegisteredCheck<K>> } = {
  dns: async () => register((await import('./dns.js')).dnsCheck),
  ttl: async () => register((await import('./ttl.js')).ttlCheck),
  rdns: async () => register((await import('./rdns.js')).rdnsCheck),
  auth: async () => register((await import('./auth.js')).authCheck),
  dnsbl: async () => register((await import('./dnsbl.js')).dnsblCheck),
  smtp: async () => register((await import('./smtp.js')).smtpCheck),
  roundtrip: async () => register((await import('./roundtrip.js')).roundtripCheck),
  mta: async () => register((await import('./mta.js')).mtaCheck),
  inbox: async () => register((await import('./inbox.js')).inboxCheck),
};

/** Loads the probe side of `types` (default: every check type): the registry a probe runs. */
export async function loadChecks(types: readonly CheckType[] = CHECK_TYPES): Promise<CheckRegistry> {
  const loaded = await Promise.all(types.map((t) => CHECKS[t]()));
  return Object.fromEntries(loaded.map((c) => [c.type, c])) as CheckRegistry;
}

/** Every problem that keeps a check of `types` from running, known at start. */
export function setupProblems(
  registry: CheckRegistry,
  types: readonly CheckType[] | undefined,
  plan: PlanConfig,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const checks = Object.values(registry).filter((c): c is RegisteredCheck => c !== undefined && (types === undefined || types.includes(c.type)));
  return [...new Set(checks.flatMap((c) => c.setupProblems(plan, env)))];
}
