/**
 * `mailprobe start` (`npm start`): until the lab cutover exists, the collector on the example
 * plan, with the URL of its /metrics printed.
 */
import { fileURLToPath } from 'node:url';
import { loadPlan } from '../config/load.js';
import { startCollector, untilSignal } from './collector.js';

export async function runStart(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: mailprobe start\n  Runs the collector on examples/plan.yaml (listen: MAILPROBE_LISTEN, default 127.0.0.1:9464).\n');
    return 0;
  }
  const file = process.env.MAILPROBE_CONFIG ?? fileURLToPath(new URL('../examples/plan.yaml', import.meta.url).href.replace('/dist/examples/', '/examples/'));
  const plan = await loadPlan(file);
  const c = await startCollector(plan, process.env.MAILPROBE_LISTEN ?? '127.0.0.1:9464');
  process.stdout.write(`mailprobe: collector for ${plan.cutover.mail_host} running\n  metrics: ${c.url}/metrics\n  push:    ${c.url}/v1/results\nCtrl-C stops it.\n`);
  await untilSignal();
  await c.close();
  return 0;
}
