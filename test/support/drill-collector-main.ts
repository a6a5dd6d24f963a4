/**
 * A collector process for drills: like `mailprobe collector`, with a shorter request timeout so
 * slow-drip clients are cut off within a test's time (0: the product's). Prints `mailprobe
 * collector: metrics at <url>/metrics` once it listens, stops on SIGTERM. Run with --expose-gc,
 * SIGUSR2 makes it collect garbage and print `live-bytes <heap used + external>`.
 *
 *   node [--expose-gc] --import tsx test/support/drill-collector-main.ts PLAN_FILE REQUEST_TIMEOUT_MS
 *
 * It runs with the memory settings of `mailprobe collector` (config/node-runtime.ts).
 */
import { applyTuning, SERVER_TUNING } from '../../config/node-runtime.js';

// The memory settings of `mailprobe collector` (a re-exec), before the collector is loaded.
applyTuning(SERVER_TUNING);
const { buildCollector } = await import('../../collector/app.js');
const { loadPlan } = await import('../../config/load.js');

const [file, timeout] = process.argv.slice(2);
if (!file || !timeout) {
  process.stderr.write('usage: drill-collector-main.ts PLAN_FILE REQUEST_TIMEOUT_MS\n');
  process.exit(2);
}
const plan = await loadPlan(file);
const { app } = await buildCollector({ plan, logger: false, ...(Number(timeout) > 0 ? { requestTimeoutMs: Number(timeout) } : {}) });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
if (!addr || typeof addr === 'string') throw new Error('collector did not bind');
process.stdout.write(`mailprobe collector: metrics at http://127.0.0.1:${addr.port}/metrics\n`);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  process.on('SIGUSR2', () => {
    gc();
    gc();
    const m = process.memoryUsage();
    process.stdout.write(`live-bytes ${m.heapUsed + m.external}\n`);
  });
}
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
