/**
 * Loading the plan in a command: validated once (config/load.ts), and what is valid but probably
 * not meant (a window already over) printed as a warning before the command goes on.
 */
import { loadPlan, planWarnings, type ValidateOptions } from '../config/load.js';
import type { PlanConfig } from '../config/schema.js';
import { ID_PATTERN } from '../protocol/wire.js';

export async function loadPlanFor(command: string, file: string, opts: ValidateOptions = {}): Promise<PlanConfig> {
  const plan = await loadPlan(file, opts);
  for (const w of planWarnings(plan)) process.stderr.write(`mailprobe ${command}: warning: ${w}\n`);
  return plan;
}

/**
 * The plan file, probe id and region of a probe-side command (`--config`/`--id`/`--region`, else
 * MAILPROBE_CONFIG, MAILPROBE_PROBE_ID, MAILPROBE_REGION), or the usage error to print (exit 2).
 */
export function probeIdentity(
  command: string,
  values: { config?: string; id?: string; region?: string },
  help: string,
): { file: string; id: string; region: string } | { error: string } {
  const file = values.config ?? process.env.MAILPROBE_CONFIG;
  const id = values.id ?? process.env.MAILPROBE_PROBE_ID;
  const region = values.region ?? process.env.MAILPROBE_REGION;
  if (!file || !id || !region) {
    const missing = [!file && '--config FILE', !id && '--id ID', !region && '--region REGION'].filter(Boolean);
    return { error: `mailprobe ${command}: ${missing.join(', ')} required\n\n${help}` };
  }
  for (const [name, v] of [
    ['--id', id],
    ['--region', region],
  ] as const) {
    if (!new RegExp(ID_PATTERN).test(v)) return { error: `mailprobe ${command}: ${name} "${v}" must be letters, digits, . _ - (at most 63)\n` };
  }
  return { file, id, region };
}
