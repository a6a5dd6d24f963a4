/**
 * Loading the plan in a command: validated once (config/load.ts), and what is valid but probably
 * not meant (a window already over) printed as a warning before the command goes on.
 */
import { loadPlan, planWarnings, type ValidateOptions } from '../config/load.js';
import type { PlanConfig } from '../config/schema.js';

export async function loadPlanFor(command: string, file: string, opts: ValidateOptions = {}): Promise<PlanConfig> {
  const plan = await loadPlan(file, opts);
  for (const w of planWarnings(plan)) process.stderr.write(`mailprobe ${command}: warning: ${w}\n`);
  return plan;
}
