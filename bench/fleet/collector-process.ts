/**
 * One collector replica for the fleet benchmark, in its own process so its memory and CPU can
 * be read from /proc. The plan comes as JSON in MAILPROBE_BENCH_PLAN (already validated input);
 * prints `LISTEN <port>` once it listens and exits on SIGTERM. It runs with the memory settings of
 * `mailprobe collector` (config/node-runtime.ts).
 */
import { applyTuning, SERVER_TUNING } from '../../config/node-runtime.js';

// The memory settings of `mailprobe collector` (a re-exec), before the collector is loaded.
applyTuning(SERVER_TUNING);
const { buildCollector } = await import('../../collector/app.js');
const { validatePlan } = await import('../../config/load.js');

const input = process.env.MAILPROBE_BENCH_PLAN;
if (!input) throw new Error('MAILPROBE_BENCH_PLAN is not set');
const plan = validatePlan(JSON.parse(input) as unknown, 'bench plan');
const { app } = await buildCollector({ plan, logger: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
process.stdout.write(`LISTEN ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
