/**
 * The check registry: check type → its spec in `probe/checks/<type>.ts`.
 *
 * To add a check, import its `<type>Check` spec and add one line `<type>: register(<type>Check),`
 * to {@link CHECKS}. The runtime runs every entry (or those named with `--checks`).
 */
import type { PlanConfig } from '../../config/schema.js';
import type { CheckContext, CheckOutput, CheckSpec, CheckType } from '../check.js';
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
export interface RegisteredCheck {
  readonly type: CheckType;
  /** The runs of one scheduling round: one per target, keyed stably. */
  jobs(plan: PlanConfig): RegisteredJob[];
  timeoutMs(plan: PlanConfig): number;
}

export interface RegisteredJob {
  readonly key: string;
  /** The target and settings as given, which the runtime reads fields from for a failed result. */
  readonly target: unknown;
  readonly settings: unknown;
  run(ctx: CheckContext): Promise<CheckOutput>;
}

export type CheckRegistry = Readonly<Partial<Record<CheckType, RegisteredCheck>>>;

export function register<Target, Settings>(spec: CheckSpec<Target, Settings>): RegisteredCheck {
  return {
    type: spec.type,
    jobs: (plan) =>
      spec.targets(plan).map(({ key, target, settings }) => ({ key, target, settings, run: (ctx: CheckContext) => spec.run(target, settings, ctx) })),
    timeoutMs: (plan) => spec.timeoutMs?.(plan) ?? plan.probes.timeout,
  };
}

/** Every check the probe runs by default. */
export const CHECKS: CheckRegistry = {
  dns: register(dnsCheck),
  ttl: register(ttlCheck),
  rdns: register(rdnsCheck),
  auth: register(authCheck),
  dnsbl: register(dnsblCheck),
  smtp: register(smtpCheck),
  roundtrip: register(roundtripCheck),
};
