/**
 * `mailprobe probe --config FILE --id ID --region R`: run a probe until SIGTERM/SIGINT, which
 * stop scheduling, wait for running checks, push what can be pushed and exit 0 (the rest stays
 * in the spool for the next start).
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { CHECK_TYPES, type CheckType } from '../protocol/results.js';
import { CHECKS, loadChecks, setupProblems, type CheckRegistry, type RegisteredCheck } from '../probe/checks/index.js';
import { createProbe } from '../probe/runtime.js';
import { PROBE_TUNING } from '../config/node-runtime.js';
import { untilSignal } from './signals.js';
import { createProbeLog } from '../probe/log.js';
import { IDENTITY_OPTIONS, loadPlanFor, probeCommand, RUNTIME_HELP, RUNTIME_OPTIONS, runtimeOptions } from './plan.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { parseArgs } = process.getBuiltinModule('node:util');

const HELP = `usage: mailprobe probe --config FILE --id ID --region REGION [options]

  --config FILE          the cutover plan (env MAILPROBE_CONFIG)
  --id ID                this probe's id, as in collector.tokens (env MAILPROBE_PROBE_ID)
  --region REGION        the region label of its results (env MAILPROBE_REGION)
  --checks LIST          only these check types, comma-separated (default: all registered:
                         ${Object.keys(CHECKS).join(', ') || 'none yet'})
${RUNTIME_HELP}  --check-module FILE    also load checks from a module exporting \`checks\` (a registry object
                         of register(spec) entries), for custom checks

Environment: MAILPROBE_NODE_FLAGS, the V8 flags the probe re-executes itself with when they are
missing (default: ${PROBE_TUNING.flags.join(' ')}; empty: none); MAILPROBE_NODE_TUNING=0: none.

The bearer token is read from the environment variable named by probes.push.token_env
(default MAILPROBE_TOKEN). Every batch goes to every URL in probes.push.collectors.
SIGTERM/SIGINT: stop scheduling, wait for running checks, push what it can, exit 0.
`;

function isRegistered(v: unknown): v is RegisteredCheck {
  return typeof v === 'object' && v !== null && 'type' in v && 'jobs' in v && typeof (v as RegisteredCheck).jobs === 'function';
}

async function loadCheckModule(file: string): Promise<CheckRegistry> {
  const mod = (await import(pathToFileURL(resolve(file)).href)) as { checks?: Record<string, unknown> };
  const out: Record<string, RegisteredCheck> = {};
  for (const [type, entry] of Object.entries(mod.checks ?? {})) {
    if (!isRegistered(entry)) throw new Error(`${file}: checks.${type} is not a register(spec) entry`);
    if (!(CHECK_TYPES as readonly string[]).includes(entry.type))
      throw new Error(`${file}: checks.${type} has unknown check type "${entry.type}" (known: ${CHECK_TYPES.join(', ')})`);
    out[entry.type] = entry;
  }
  return out as CheckRegistry;
}

export async function runProbe(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...IDENTITY_OPTIONS, ...RUNTIME_OPTIONS, checks: { type: 'string' }, 'check-module': { type: 'string' } },
  });
  const who = probeCommand('probe', values, HELP);
  if ('exit' in who) return who.exit;
  const { file, id, region } = who;
  const { error: badRuntime, ...runtime } = runtimeOptions(values);
  if (badRuntime) {
    process.stderr.write(`mailprobe probe: ${badRuntime}\n`);
    return 2;
  }
  const plan = await loadPlanFor('probe', file);
  let checks: CheckType[] | undefined;
  if (values.checks) {
    checks = [];
    for (const t of values.checks
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (!(CHECK_TYPES as readonly string[]).includes(t)) {
        process.stderr.write(`mailprobe probe: --checks: unknown check type "${t}" (known: ${CHECK_TYPES.join(', ')})\n`);
        return 2;
      }
      checks.push(t as CheckType);
    }
  }
  // Only the modules of the check types this probe runs; a custom module's entries replace the built-in ones.
  const custom = values['check-module'] ? await loadCheckModule(values['check-module']) : {};
  const builtIn = (checks ?? CHECK_TYPES).filter((t) => custom[t] === undefined);
  const registry: CheckRegistry = { ...(await loadChecks(builtIn)), ...custom };
  const tokenEnv = plan.probes.push.token_env;
  const token = process.env[tokenEnv] ?? '';
  if (plan.probes.push.collectors.length > 0 && !token) {
    process.stderr.write(`mailprobe probe: no bearer token: set ${tokenEnv} (probes.push.token_env) to this probe's token (see \`mailprobe token\`)\n`);
    return 2;
  }
  // A check that cannot run at all (its secret not set, its file unreadable) is a setup error: say which, exit 2.
  const problems = setupProblems(registry, checks, plan);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`mailprobe probe: ${p}\n`);
    return 2;
  }
  const log = createProbeLog('probe');
  const probe = createProbe({
    plan,
    id,
    region,
    token,
    registry,
    ...(checks ? { checks } : {}),
    logger: log,
    ...runtime,
  });
  const signal = untilSignal();
  try {
    await probe.start();
  } catch (err) {
    // A locked spool, an unwritable spool directory, a busy health port: say which, exit 1.
    process.stderr.write(`mailprobe probe: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (probe.healthUrl) process.stdout.write(`mailprobe probe ${id}: health at ${probe.healthUrl}/healthz, metrics at ${probe.healthUrl}/metrics\n`);
  const sig = await signal;
  log.info({ signal: sig }, 'stopping: waiting for running checks, pushing what is spooled');
  await probe.stop();
  return 0;
}
