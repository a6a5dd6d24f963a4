/**
 * `mailprobe sink --config FILE`: the round-trip sink on its own host, for probes that set
 * probes.roundtrip.sink.url to its arrivals API (probes.roundtrip.sink.http_listen).
 */
import { parseArgs } from 'node:util';
import { loadPlanFor } from './plan.js';
import { closeSharedSinks, sharedArrivals, sharedSink } from '../probe/sink/shared.js';
import { untilSignal } from './signals.js';
import { createLogger } from './log.js';

const USAGE = `usage: mailprobe sink --config FILE
  Runs the round-trip sink of the plan (probes.roundtrip.sink: listen, max_size, resolver, TLS,
  http_listen) until SIGTERM/SIGINT. Probes on other hosts set probes.roundtrip.sink.url to the
  http_listen address; the HMAC secret comes from the variable named by probes.roundtrip.secret_env.
  --config FILE   the cutover plan (env MAILPROBE_CONFIG)
`;

export async function runSink(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const file = values.config ?? process.env.MAILPROBE_CONFIG;
  if (!file) {
    process.stderr.write(`mailprobe sink: --config FILE is required\n${USAGE}`);
    return 2;
  }
  const plan = await loadPlanFor('sink', file);
  const rt = plan.probes.roundtrip;
  if (!rt) {
    process.stderr.write('mailprobe sink: the plan has no probes.roundtrip section\n');
    return 2;
  }
  const log = createLogger('mailprobe-sink');
  const signal = untilSignal();
  let sink: Awaited<ReturnType<typeof sharedSink>> | undefined;
  try {
    sink = (await sharedSink(plan, log)).ref();
  } catch (err) {
    process.stderr.write(`mailprobe sink: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const api = sharedArrivals(rt.sink.listen);
  process.stdout.write(
    `mailprobe sink: SMTP on ${sink.host}:${sink.port} for ${rt.to}${api ? `, arrivals at ${api.url}` : ' (no http_listen: probes on other hosts cannot ask it)'}\n`,
  );
  const sig = await signal;
  log.info({ signal: sig }, 'stopping the sink');
  await closeSharedSinks();
  return 0;
}
