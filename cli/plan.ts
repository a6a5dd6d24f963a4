/**
 * Loading the plan in a command: validated once (config/load.ts), and what is valid but probably
 * not meant (a window already over) printed as a warning before the command goes on. And the
 * options the probe-side commands (probe, mta-log, preflight) share, parsed and checked once here.
 */
import { loadPlan, planWarnings, type ValidateOptions } from '../config/load.js';
import { parseListen, specProblem } from '../config/specs.js';
import type { PlanConfig } from '../config/schema.js';
import { ID_PATTERN } from '../protocol/wire.js';

export async function loadPlanFor(command: string, file: string, opts: ValidateOptions = {}): Promise<PlanConfig> {
  const plan = await loadPlan(file, opts);
  for (const w of planWarnings(plan)) process.stderr.write(`mailprobe ${command}: warning: ${w}\n`);
  return plan;
}

/**
 * The start of every probe-side command: with --help its usage on stdout (exit 0), else its
 * identity (probeIdentity), or the usage error on stderr (exit 2). `exit` says the command is done.
 */
export function probeCommand(
  command: string,
  values: { config?: string | undefined; id?: string | undefined; region?: string | undefined; help?: boolean | undefined },
  help: string,
): { file: string; id: string; region: string } | { exit: number } {
  if (values.help) {
    process.stdout.write(help);
    return { exit: 0 };
  }
  const who = probeIdentity(command, values, help);
  if ('error' in who) {
    process.stderr.write(who.error);
    return { exit: 2 };
  }
  return who;
}

/**
 * The plan file, probe id and region of a probe-side command (`--config`/`--id`/`--region`, else
 * MAILPROBE_CONFIG, MAILPROBE_PROBE_ID, MAILPROBE_REGION), or the usage error to print (exit 2).
 */
function probeIdentity(
  command: string,
  values: { config?: string | undefined; id?: string | undefined; region?: string | undefined },
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

/** The plan and the probe's identity (probeIdentity), and --help: every probe-side command. */
export const IDENTITY_OPTIONS = {
  config: { type: 'string', short: 'c' },
  id: { type: 'string' },
  region: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What a process that pushes like a probe runs with (probe/runtime.ts): its spool and health endpoint. */
export const RUNTIME_OPTIONS = {
  'spool-dir': { type: 'string' },
  'health-listen': { type: 'string' },
} as const;

/** The help lines of RUNTIME_OPTIONS. */
export const RUNTIME_HELP = `  --spool-dir DIR        spool directory (default probes.push.spool_dir, else .mailprobe-spool/<id>)
  --health-listen ADDR   serve /healthz (503 with reasons while degraded), /livez and /metrics on
                         host:port (env MAILPROBE_HEALTH_LISTEN; default probes.health_listen, else off)
`;

/**
 * --spool-dir and --health-listen (else MAILPROBE_HEALTH_LISTEN) as the runtime's options, the
 * listen address checked; or the usage error naming where the bad value came from.
 */
export function runtimeOptions(values: { 'spool-dir'?: string | undefined; 'health-listen'?: string | undefined }): {
  spoolDir?: string;
  healthListen?: string;
  error?: string;
} {
  const healthListen = values['health-listen'] ?? process.env.MAILPROBE_HEALTH_LISTEN;
  const bad = healthListen === undefined ? null : specProblem(parseListen, healthListen);
  if (bad) return { error: `${values['health-listen'] ? '--health-listen' : 'MAILPROBE_HEALTH_LISTEN'}: ${bad}` };
  return { ...(values['spool-dir'] ? { spoolDir: values['spool-dir'] } : {}), ...(healthListen ? { healthListen } : {}) };
}
