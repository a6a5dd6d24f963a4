/**
 * The check registry: check type → the probe side of its definition in `probe/checks/<type>.ts`
 * (targets, the settings object its runs get, the run). The type's contract (result schema,
 * settings schema, failed results, metric mapping) is in `protocol/checks/<type>.ts`, registered
 * in `CHECK_DEFS` (`protocol/checks/index.ts`), from which config/schema.ts composes the plan;
 * {@link CHECKS} must name every type of `CHECK_DEFS` and nothing else, or this file does not
 * compile. docs/adding-a-check.md walks through adding one.
 *
 * The runtime runs every entry (or those named with `--checks`).
 */
import type { PlanConfig } from '../../config/schema.js';
import { failedResults, type CheckType } from '../../protocol/checks/index.js';
import type { FailedRun } from '../../protocol/checks/common.js';
import type { CheckContext, CheckOutput, CheckSpec } from '../check.js';
import { authCheck } from './auth.js';
import { dnsCheck } from './dns.js';
import { dnsblCheck } from './dnsbl.js';
import { rdnsCheck } from './rdns.js';
import { roundtripCheck } from './roundtrip.js';
import { smtpCheck } from './smtp.js';
import { ttlCheck } from './ttl.js';

/**
 * A spec with its target and settings types erased behind closures, so specs of different
 * types sit in one registry without casts.
 */
export interface RegisteredCheck<K extends CheckType = CheckType> {
  readonly type: K;
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

/** Every check the probe runs by default: one entry per check type, no more, no less. */
export const CHECKS: { readonly [K in CheckType]: RegisteredCheck<K> } = {
  dns: register(dnsCheck),
  ttl: register(ttlCheck),
  rdns: register(rdnsCheck),
  auth: register(authCheck),
  dnsbl: register(dnsblCheck),
  smtp: register(smtpCheck),
  roundtrip: register(roundtripCheck),
};

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
