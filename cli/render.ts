/**
 * `mailprobe render alertmanager --config FILE`: prints the Alertmanager configuration of the
 * plan (config/alertmanager.ts), so the cutover window is written once, in the plan.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_RECEIVERS, renderAlertmanager } from '../config/alertmanager.js';
import { loadPlanFor } from './plan.js';

const USAGE = `usage: mailprobe render alertmanager --config FILE [--pager-url URL] [--team-url URL] [--bridge-url URL]
  Prints the Alertmanager configuration of the plan on stdout: routes by severity, the cutover
  window of the plan (cutover.window) as the time interval "cutover-window" in which critical and
  warning alerts also reach the cutover bridge, inhibit rules and webhook receivers.
    mailprobe render alertmanager --config plan.yaml > alertmanager.yml && amtool check-config alertmanager.yml
  --config FILE      the cutover plan (env MAILPROBE_CONFIG)
  --pager-url URL    webhook for critical alerts (default ${DEFAULT_RECEIVERS.pager})
  --team-url URL     webhook for warnings (default ${DEFAULT_RECEIVERS.team})
  --bridge-url URL   webhook of the cutover bridge (default ${DEFAULT_RECEIVERS.bridge})
`;

export async function runRender(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'pager-url': { type: 'string' },
      'team-url': { type: 'string' },
      'bridge-url': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'alertmanager') {
    process.stderr.write(`mailprobe render: ${positionals.length === 0 ? 'what to render is missing' : `cannot render "${positionals.join(' ')}"`}\n${USAGE}`);
    return 2;
  }
  const file = values.config ?? process.env.MAILPROBE_CONFIG;
  if (!file) {
    process.stderr.write(`mailprobe render: --config FILE is required\n${USAGE}`);
    return 2;
  }
  const receivers = {
    pager: values['pager-url'] ?? DEFAULT_RECEIVERS.pager,
    team: values['team-url'] ?? DEFAULT_RECEIVERS.team,
    bridge: values['bridge-url'] ?? DEFAULT_RECEIVERS.bridge,
  };
  for (const [name, url] of Object.entries(receivers)) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      process.stderr.write(`mailprobe render: --${name}-url: must be an http(s) URL\n`);
      return 2;
    }
  }
  const plan = await loadPlanFor('render', file, { files: false });
  process.stdout.write(renderAlertmanager(plan, receivers, file));
  return 0;
}
