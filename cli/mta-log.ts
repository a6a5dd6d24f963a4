/**
 * `mailprobe mta-log --config FILE --id ID`: follow a mail server's log beside it (old or new),
 * and push its inbound sessions and accepted messages per server IP and client network to the
 * collectors like a probe (probe/mtalog/index.ts). Stdin ends at EOF (the last interval is
 * pushed, exit 0); a file is followed until SIGTERM/SIGINT.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { blockList, createMtaLog, FORMATS, type LogFormat } from '../probe/mtalog/index.js';
import { untilSignal } from './signals.js';
import { createLogger } from './log.js';
import { IDENTITY_OPTIONS, loadPlanFor, probeCommand, RUNTIME_HELP, RUNTIME_OPTIONS, runtimeOptions } from './plan.js';

const HELP = `usage: mailprobe mta-log --config FILE --id ID --ip IP [--file PATH | --stdin] [options]

Follows a mail server's log and pushes, every probe interval, the inbound SMTP sessions and the
messages it accepted per server IP and client network to the collectors (same spool, token and
batches as a probe). Run one beside the old server (and the new one): with it, turning the old
server off is safe only once no inbound session reached the old IP for probes.decommission_quiet.

  --config FILE          the cutover plan (env MAILPROBE_CONFIG)
  --id ID                this follower's id, as in collector.tokens (env MAILPROBE_PROBE_ID);
                         the server label of its metrics
  --region REGION        the region its token is bound to (env MAILPROBE_REGION; default mta)
  --format FORMAT        postfix (default) or exim
  --file PATH            the log file to follow (tail -F: survives rotation and truncation)
  --stdin                read the log from standard input until EOF, e.g.
                           journalctl -f -o cat -u postfix | mailprobe mta-log … --stdin
  --from-start           read the file from its start (default: only what is written from now on)
  --ip IP                a server IP of the plan this MTA receives on (repeatable); lines that
                         name no server address (Postfix smtpd) count for the one IP given alone
  --ip NAME=IP           Postfix: the instance or service logging as syslog_name NAME (e.g.
                         postfix-old/smtpd) receives on IP
  --ignore-client CIDR   clients not counted (repeatable): the probes' own addresses, whose SMTP
                         checks reach the old IP on purpose, and your monitoring
  --top-networks N       client networks named per IP and interval, the rest "other" (default 10)
  --v4-prefix N          client network size, IPv4 (default 24)
  --v6-prefix N          client network size, IPv6 (default 48)
${RUNTIME_HELP}
Postfix: counts smtpd's "connect from" lines and messages queued from SMTP clients ("client="
joined with qmgr's "queue active"). Exim: needs log_selector = +smtp_connection for sessions and
+incoming_interface for the server address (I=); arrivals (<= … H=…) are the messages.
Lines of neither grammar are counted (mailprobe_mta_log_lines_total{result="unknown"}) and skipped.
The token is read from the variable named by probes.push.token_env (default MAILPROBE_TOKEN).
`;

const fail = (msg: string): number => {
  process.stderr.write(`mailprobe mta-log: ${msg}\n`);
  return 2;
};

function intOption(name: string, v: string | undefined, def: number, min: number, max: number): number | string {
  if (v === undefined) return def;
  const n = Number(v);
  return Number.isInteger(n) && n >= min && n <= max ? n : `--${name}: must be a whole number from ${min} to ${max} (got "${v}")`;
}

export async function runMtaLog(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...IDENTITY_OPTIONS,
      ...RUNTIME_OPTIONS,
      format: { type: 'string' },
      file: { type: 'string' },
      stdin: { type: 'boolean' },
      'from-start': { type: 'boolean' },
      ip: { type: 'string', multiple: true },
      'ignore-client': { type: 'string', multiple: true },
      'top-networks': { type: 'string' },
      'v4-prefix': { type: 'string' },
      'v6-prefix': { type: 'string' },
    },
  });
  const who = probeCommand('mta-log', { ...values, region: values.region ?? process.env.MAILPROBE_REGION ?? 'mta' }, HELP);
  if ('exit' in who) return who.exit;
  const format = (values.format ?? 'postfix') as LogFormat;
  if (!FORMATS.includes(format)) return fail(`--format: must be ${FORMATS.join(' or ')} (got "${values.format}")`);
  if (values.file === undefined && !values.stdin) return fail('--file PATH or --stdin required');
  if (values.file !== undefined && values.stdin) return fail('--file and --stdin exclude each other');
  if (values['from-start'] && values.stdin) return fail('--from-start is for --file');
  const ips: { ip: string; service?: string }[] = [];
  for (const spec of values.ip ?? []) {
    const eq = spec.lastIndexOf('=');
    const ip = eq < 0 ? spec : spec.slice(eq + 1);
    const service = eq < 0 ? undefined : spec.slice(0, eq);
    if (!isIP(ip)) return fail(`--ip ${spec}: ${JSON.stringify(ip)} is not an IP address`);
    if (service === '') return fail(`--ip ${spec}: the syslog name before = is empty`);
    ips.push({ ip, ...(service ? { service } : {}) });
  }
  if (ips.length === 0) return fail('--ip IP required: the server IP(s) of the plan this MTA receives on');
  // The defaults, then what the options say.
  const nums = { 'top-networks': 10, 'v4-prefix': 24, 'v6-prefix': 48 };
  for (const [k, min, max] of [
    ['top-networks', 1, 64],
    ['v4-prefix', 0, 32],
    ['v6-prefix', 0, 128],
  ] as const) {
    const n = intOption(k, values[k], nums[k], min, max);
    if (typeof n === 'string') return fail(n);
    nums[k] = n;
  }
  const ignoreClients = values['ignore-client'] ?? [];
  try {
    blockList(ignoreClients);
  } catch (err) {
    return fail(`--ignore-client ${(err as Error).message}`);
  }
  const { error: badRuntime, ...runtime } = runtimeOptions(values);
  if (badRuntime) return fail(badRuntime);
  const plan = await loadPlanFor('mta-log', who.file);
  const servers = new Map(plan.cutover.servers.map((s) => [s.ip, s.side]));
  for (const { ip } of ips) {
    if (!servers.has(ip))
      return fail(`--ip ${ip}: not a server IP of the plan (cutover.servers: ${plan.cutover.servers.map((s) => `${s.ip} ${s.side}`).join(', ')})`);
  }
  const tokenEnv = plan.probes.push.token_env;
  const token = process.env[tokenEnv] ?? '';
  if (plan.probes.push.collectors.length > 0 && !token) return fail(`no bearer token: set ${tokenEnv} (probes.push.token_env) to this follower's token`);
  const log = createLogger('mta-log');
  const follower = createMtaLog({
    plan,
    id: who.id,
    region: who.region,
    token,
    format,
    // --file or --stdin, one of them (checked above).
    input: values.file === undefined ? { stream: process.stdin } : { file: values.file, ...(values['from-start'] ? { fromStart: true } : {}) },
    ips,
    ignoreClients,
    topNetworks: nums['top-networks'],
    v4Prefix: nums['v4-prefix'],
    v6Prefix: nums['v6-prefix'],
    logger: log,
    ...runtime,
  });
  const signal = untilSignal();
  try {
    await follower.start();
  } catch (err) {
    process.stderr.write(`mailprobe mta-log: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const why = await Promise.race([signal, follower.ended.then(() => 'eof' as const)]);
  log.info({ why }, why === 'eof' ? 'input ended: pushing the last interval' : 'stopping: pushing the last interval');
  await follower.stop();
  return 0;
}
