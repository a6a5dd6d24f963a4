/**
 * `mailprobe collector --config FILE`: the push endpoint and /metrics, until SIGTERM/SIGINT,
 * which drain in-flight requests and exit 0.
 */
import { parseArgs } from 'node:util';
import { buildCollector } from '../collector/app.js';
import { parseListen, specProblem } from '../config/specs.js';
import { loadPlanFor } from './plan.js';
import type { PlanConfig } from '../config/schema.js';
import { createLogger } from './log.js';
import { runtimeSettings, SERVER_TUNING } from '../config/node-runtime.js';
import { untilSignal } from './signals.js';

const HELP = `usage: mailprobe collector --config FILE [--listen HOST:PORT]

  --config FILE      the cutover plan (env MAILPROBE_CONFIG)
  --listen ADDR      listen address (env MAILPROBE_LISTEN; default collector.listen, 0.0.0.0:9464)

Probes push to POST /v1/results with their bearer token; Prometheus scrapes GET /metrics.
/healthz answers while the process runs, /readyz while it takes pushes.
`;

export interface RunningCollector {
  url: string;
  close(): Promise<void>;
}

/** Starts a collector for a plan; resolves once it listens. */
export async function startCollector(plan: PlanConfig, listen: string, logName = 'collector'): Promise<RunningCollector> {
  const log = createLogger(logName);
  const { app } = await buildCollector({ plan, logger: log });
  const { host, port } = parseListen(listen);
  await app.listen({ host, port });
  const addr = app.server.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${boundPort}`;
  log.info({ url, probes: Object.keys(plan.collector.tokens).length, runtime: runtimeSettings(SERVER_TUNING) }, 'collector listening');
  return { url, close: () => app.close() };
}

export async function runCollector(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, listen: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const file = values.config ?? process.env.MAILPROBE_CONFIG;
  if (!file) {
    process.stderr.write(`mailprobe collector: --config FILE is required\n\n${HELP}`);
    return 2;
  }
  const plan = await loadPlanFor('collector', file, { files: false });
  const listen = values.listen ?? process.env.MAILPROBE_LISTEN ?? plan.collector.listen;
  const bad = specProblem(parseListen, listen);
  if (bad) {
    process.stderr.write(
      `mailprobe collector: ${values.listen ? '--listen' : process.env.MAILPROBE_LISTEN ? 'MAILPROBE_LISTEN' : 'collector.listen'}: ${bad}\n`,
    );
    return 2;
  }
  const c = await startCollector(plan, listen);
  process.stdout.write(`mailprobe collector: metrics at ${c.url}/metrics\n`);
  const sig = await untilSignal();
  createLogger('collector').info({ signal: sig }, 'draining and stopping');
  await c.close();
  return 0;
}
