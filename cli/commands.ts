/**
 * The commands of `mailprobe` and how their usage errors read: `main(argv)` returns the exit code
 * (0 done, 1 failed, 2 usage). cli/main.ts, the binary, checks the Node version first and runs it;
 * the CLI tests run every command's `--help` and usage errors through it in one process.
 */
import { ConfigError, loadPlan, planJsonSchema, planWarnings } from '../config/load.js';
import { VERSION } from '../protocol/version.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { randomBytes } = process.getBuiltinModule('node:crypto');
const { parseArgs } = process.getBuiltinModule('node:util');

const USAGE = `mailprobe ${VERSION}: synthetic monitoring for moving a mail server to a new IP

Usage:
  mailprobe start                         run the built-in lab demo (what \`npm start\` runs)
  mailprobe collector --config FILE       run the collector (push endpoint + /metrics)
  mailprobe probe --config FILE --id ID --region R
                                          run a probe: checks, spool, push to the collectors
  mailprobe sink --config FILE            run the round-trip sink on its own host (probes.roundtrip.sink)
  mailprobe mta-log --config FILE --id ID --ip IP --file LOG|--stdin
                                          follow a mail server's log beside it; push its inbound
                                          sessions and messages per server IP and client network
  mailprobe report --prometheus URL --from T --to T [--out DIR]
                                          the cutover report (HTML and Markdown) from Prometheus
  mailprobe config check FILE             validate a cutover plan; exit 1 naming each problem
  mailprobe preflight --config FILE --id ID --region R
                                          prove the plan from this host before the window (or
                                          config check --connect FILE --id ID --region R)
  mailprobe config schema                 print the plan's JSON Schema (for editors)
  mailprobe render alertmanager --config FILE
                                          print the Alertmanager configuration of the plan (its window)
  mailprobe token [--hash TOKEN]          make a probe token and the sha256: value for the plan
  mailprobe --version | --help

Run \`mailprobe <command> --help\` for a command's options.
Environment: MAILPROBE_CONFIG (plan file), MAILPROBE_LISTEN (collector listen address),
MAILPROBE_PROBE_ID, MAILPROBE_REGION, MAILPROBE_TOKEN (probe), MAILPROBE_HEALTH_LISTEN (probe /healthz),
MAILPROBE_LOG_LEVEL (debug, info, warn, error; default info), MAILPROBE_NODE_FLAGS (the V8 flags probe,
collector and start re-execute themselves with; empty: none), MAILPROBE_NODE_TUNING=0 (Node's defaults).
`;

type Command = (argv: string[]) => Promise<number>;

const CONFIG_HELP = `usage: mailprobe config check FILE     validate a cutover plan: every problem as "path: rule", exit 1
       mailprobe config check --connect FILE --id ID --region R
                                         also prove the plan from this host (= mailprobe preflight)
       mailprobe config schema           print the plan's JSON Schema (for editors; the committed
                                         copy is examples/plan.schema.json)

  check validates the schema, every server spec (resolvers, authoritative servers, listen
  addresses, URLs), bounds of sizes and durations, and that the files the plan names exist and
  hold PEM that parses; a window already over is a warning. Exit 0 valid, 1 invalid, 2 usage.
`;

const config: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? process.stderr : process.stdout).write(CONFIG_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'schema') {
    const { values } = parseArgs({ args: rest, options: { help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(CONFIG_HELP);
      return 0;
    }
    process.stdout.write(`${JSON.stringify(planJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (sub === 'check') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { connect: { type: 'boolean' }, id: { type: 'string' }, region: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(CONFIG_HELP);
      return 0;
    }
    const [file, ...extra] = positionals;
    if (!file || extra.length > 0) {
      process.stderr.write(`mailprobe config check: ${file ? `one plan file only (got ${positionals.join(' ')})` : 'FILE is required'}\n\n${CONFIG_HELP}`);
      return 2;
    }
    if (values.connect) {
      return (await import('./preflight.js')).runPreflight([
        '--config',
        file,
        ...(values.id ? ['--id', values.id] : []),
        ...(values.region ? ['--region', values.region] : []),
      ]);
    }
    const plan = await loadPlan(file);
    for (const w of planWarnings(plan)) process.stderr.write(`${file}: warning: ${w}\n`);
    process.stdout.write(`${file}: ok\n`);
    return 0;
  }
  process.stderr.write(`mailprobe config: unknown subcommand "${sub}"\n\n${CONFIG_HELP}`);
  return 2;
};

const TOKEN_HELP = `usage: mailprobe token [--id ID --region R] [--hash TOKEN]

  Without --hash: a new random token and its collector.tokens entry.
  --id ID --region R   print the entry as the plan line "ID: { region: R, hash: sha256:… }"
                       (the region binds the probe: pushes under another region get 409)
  --hash TOKEN         print only the sha256: value of an existing token
  Give the token to the probe (MAILPROBE_TOKEN) and the entry to collector.tokens.
`;

const token: Command = async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: { hash: { type: 'string' }, id: { type: 'string' }, region: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(TOKEN_HELP);
    return 0;
  }
  const { ID_PATTERN } = await import('../protocol/wire.js');
  for (const k of ['id', 'region'] as const) {
    const v = values[k];
    if (v !== undefined && !new RegExp(ID_PATTERN).test(v)) {
      process.stderr.write(`mailprobe token: --${k}: must be letters, digits, . _ - (at most 63)\n`);
      return 2;
    }
  }
  if ((values.id === undefined) !== (values.region === undefined)) {
    process.stderr.write('mailprobe token: --id and --region go together\n');
    return 2;
  }
  const { hashToken } = await import('../collector/plugins/auth.js');
  if (values.hash !== undefined) {
    process.stdout.write(`${hashToken(values.hash)}\n`);
    return 0;
  }
  const t = randomBytes(24).toString('base64url');
  const entry =
    values.id && values.region ? `${values.id}: { region: ${values.region}, hash: "${hashToken(t)}" }` : `{ region: <region>, hash: "${hashToken(t)}" }`;
  process.stdout.write(`token:  ${t}\nplan:   ${hashToken(t)}\nentry:  ${entry}\n`);
  return 0;
};

// Each command loads its own modules, so `--help` or `config check` does not load the lab.
const COMMANDS: Record<string, Command> = {
  start: async (argv) => (await import('./start.js')).runStart(argv),
  collector: async (argv) => (await import('./collector.js')).runCollector(argv),
  probe: async (argv) => (await import('./probe.js')).runProbe(argv),
  sink: async (argv) => (await import('./sink.js')).runSink(argv),
  'mta-log': async (argv) => (await import('./mta-log.js')).runMtaLog(argv),
  render: async (argv) => (await import('./render.js')).runRender(argv),
  report: async (argv) => (await import('./report.js')).runReport(argv),
  preflight: async (argv) => (await import('./preflight.js')).runPreflight(argv),
  config,
  token,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    process.stderr.write(`mailprobe: unknown command "${cmd}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      const what = (err.message.split('. ')[0] ?? err.message).replace(/\.$/, '');
      process.stderr.write(`mailprobe ${cmd}: ${what} (\`mailprobe ${cmd} --help\` lists the options)\n`);
      return 2;
    }
    throw err;
  }
}
