/**
 * Plans for tests: the lab's world by default (127.0.0.2 old, 127.0.0.3 new), with a token per
 * probe id (`token-<id>`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken } from '../../collector/plugins/auth.js';
import { ConfigError, validatePlan } from '../../config/load.js';
import type { PlanConfig } from '../../config/schema.js';

export const PROBE_IDS = ['p-eu', 'p-us', 'p-ap'] as const;
export const tokenFor = (id: string): string => `token-${id}`;

type Section = Record<string, unknown>;

export interface PlanOverrides {
  cutover?: Section;
  probes?: Section;
  collector?: Section;
}

/** A validated plan; each section is shallow-merged over the lab defaults. */
export function testPlan(over: PlanOverrides = {}): PlanConfig {
  return validatePlan(testPlanInput(over), 'test plan');
}

/** Writes the plan input as a file (JSON is YAML) for tests that run a `mailprobe` process. */
export function writePlanFile(dir: string, over: PlanOverrides = {}): string {
  const file = join(dir, 'plan.yaml');
  writeFileSync(file, JSON.stringify(testPlanInput(over)));
  return file;
}

/** The plan as written: the window open from an hour ago to an hour ahead, tokens for PROBE_IDS. */
export function testPlanInput(over: PlanOverrides = {}): Record<string, Section> {
  const now = Date.now();
  return {
    cutover: {
      domain: 'company.test',
      mail_host: 'mail.company.test',
      servers: [
        { ip: '127.0.0.2', side: 'old', name: 'provider-a' },
        { ip: '127.0.0.3', side: 'new', name: 'provider-b' },
      ],
      window: { start: new Date(now - 3_600_000).toISOString(), end: new Date(now + 3_600_000).toISOString() },
      dkim_selectors: ['s2026'],
      dnsbl: [],
      ...over.cutover,
    },
    probes: { interval: '60s', window_interval: '15s', timeout: '5s', ...over.probes },
    collector: {
      listen: '127.0.0.1:0',
      tokens: Object.fromEntries(PROBE_IDS.map((id) => [id, hashToken(tokenFor(id))])),
      // Tests push far faster than a probe does; the rate-limit drills set their own.
      push_rate: 10_000,
      push_burst: 10_000,
      ...over.collector,
    },
  };
}

/** The problems of a plan built with these overrides; fails the test when the plan is valid. */
export function planProblemsOf(over: PlanOverrides): readonly string[] {
  try {
    testPlan(over);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('the plan was accepted');
}

/** The probes' SMTP settings against the lab MTAs (STARTTLS required, RCPT only, the lab's CA). */
export function labSmtpSettings(caFile: string, more: Section = {}): Section {
  return {
    mode: 'rcpt',
    tls: 'required',
    from: 'probe@company.test',
    to: 'postmaster@company.test',
    helo: 'probe.company.test',
    ca_file: caFile,
    ...more,
  };
}
