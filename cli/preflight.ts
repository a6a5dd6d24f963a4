/**
 * `mailprobe preflight --config FILE --id ID --region R` (also `mailprobe config check --connect
 * FILE`): the step before the window, run on the probe's host (or as its init container /
 * ExecStartPre). One line per item; exit 1 on any failure.
 */
import { parseArgs } from 'node:util';
import { formatItem, runPreflight as preflight } from '../probe/preflight.js';
import { IDENTITY_OPTIONS, loadPlanFor, probeCommand } from './plan.js';
import { VERSION } from '../protocol/version.js';

const HELP = `usage: mailprobe preflight --config FILE --id ID --region REGION

Proves the plan from this host, one line per item ("ok" or "FAIL" with the reason):
  secrets     every variable the plan names is set (token, round-trip secret, SMTP password)
  files       probes.smtp.ca_file, the sink's certificate and key exist and parse
  collectors  each accepts this probe's token (a dry run: POST /v1/results?dry_run=1, nothing
              applied), with the clock offset to it (± half the request's round trip)
  resolvers   each answers a real query for the mail host's A record
  auth:*      each authoritative server (probes.authoritative, else the zone's NS) answers it
              authoritatively
  smtp        each server IP's SMTP port greets with 220; QUIT, no mail is sent
  sink        probes.roundtrip.sink.url answers, or sink.listen can be bound here

  --config FILE     the cutover plan (env MAILPROBE_CONFIG)
  --id ID           this probe's id, as in collector.tokens (env MAILPROBE_PROBE_ID)
  --region REGION   its region (env MAILPROBE_REGION)

Exit 0 when every item passes, 1 when one fails (or the plan is invalid), 2 on usage errors.
`;

export async function runPreflight(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: IDENTITY_OPTIONS,
  });
  const who = probeCommand('preflight', values, HELP);
  if ('exit' in who) return who.exit;
  const { file, id, region } = who;
  const plan = await loadPlanFor('preflight', file);
  const items = await preflight({ plan, id, region, version: VERSION });
  for (const i of items) process.stdout.write(`${formatItem(i)}\n`);
  const failed = items.filter((i) => !i.ok).length;
  process.stdout.write(failed === 0 ? `preflight: all ${items.length} items pass\n` : `preflight: ${failed} of ${items.length} items FAIL\n`);
  return failed === 0 ? 0 : 1;
}
