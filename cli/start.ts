/**
 * `mailprobe start` (`npm start`): the lab cutover with a live terminal view. Runs to the end of
 * the timeline and exits 0; Ctrl-C (SIGINT) or SIGTERM stops everything cleanly before that.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LabCutover } from '../lab/cutover.js';
import { untilSignal } from './signals.js';

const HELP = `usage: mailprobe start [--duration SECONDS] [--plain]

Plays a compressed mail-server cutover on loopback: an authoritative DNS server and caching
resolvers (honest, TTL-ignoring, TTL-clamping, serve-stale), the old and new MTAs on
127.0.0.2 and 127.0.0.3, a collector and one probe per region (eu, us, ap). The timeline lowers
the TTL, switches the A record, raises the TTL and turns the old server off. The collector's
status page is at its / (printed at start); with Prometheus installed, the cutover report
(HTML and Markdown) is written at the end and its path printed.

  --duration SECONDS   length of the timeline (default 120; TTLs and steps scale with it)
  --plain              print the view every few seconds instead of redrawing the screen
  MAILPROBE_LISTEN     collector address (default 127.0.0.1:9464; a free port if taken)
`;

/** Firing alerts as `Name(ip/resolver…)`, or undefined without Prometheus. */
async function firing(lab: LabCutover): Promise<string[] | undefined> {
  if (!lab.prometheus) return undefined;
  try {
    const alerts = await lab.prometheus.alerts();
    return alerts
      .filter((a) => a.state === 'firing')
      .map((a) => {
        const what = a.labels.ip ?? a.labels.via_ip ?? a.labels.resolver_name ?? a.labels.resolver ?? a.labels.probe ?? a.labels.selector ?? '';
        return `${a.labels.alertname ?? '?'}${what ? `(${what})` : ''}`;
      })
      .sort();
  } catch {
    return ['(prometheus not answering)'];
  }
}

export async function runStart(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { duration: { type: 'string' }, plain: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const seconds = Number(values.duration ?? 120);
  if (!Number.isFinite(seconds) || seconds < 30 || seconds > 3600) {
    process.stderr.write('mailprobe start: --duration must be a number of seconds from 30 to 3600\n');
    return 2;
  }
  // The lab loads only now: `start --help` and a bad option answer at once.
  const [{ pino }, { LAB_MAIL_HOST, LAB_NEW_IP, LAB_OLD_IP, labTimeline, startLabCutover }, { render, snapshot, summarize }, { writeReport }] =
    await Promise.all([import('pino'), import('../lab/cutover.js'), import('../lab/view.js'), import('../report/write.js')]);
  const logFile = join(mkdtempSync(join(tmpdir(), 'mailprobe-start-')), 'lab.log');
  const logger = pino({ level: process.env.MAILPROBE_LOG_LEVEL ?? 'info' }, pino.destination({ dest: logFile, sync: false, mkdir: true }));
  const plain = values.plain === true || !process.stdout.isTTY;
  const out = (s: string) => process.stdout.write(s);

  out(`mailprobe lab: starting (logs: ${logFile})\n`);
  const signal = untilSignal();
  let lab: LabCutover;
  try {
    lab = await startLabCutover({
      durationMs: seconds * 1000,
      ...(process.env.MAILPROBE_LISTEN ? { collectorListen: process.env.MAILPROBE_LISTEN } : {}),
      logger,
      onEvent: (e) => {
        if (plain) out(`[${((e.at - lab.startedAt) / 1000).toFixed(0).padStart(3)}s] ${e.label}\n`);
      },
    });
  } catch (e) {
    process.stderr.write(`mailprobe lab: could not start: ${(e as Error).message}\n`);
    return 1;
  }
  out(`mailprobe lab: collector metrics at ${lab.collectorUrl}/metrics\n`);
  out(`mailprobe lab: status page at ${lab.collectorUrl}/\n`);

  const t = labTimeline(seconds * 1000);
  let prev = await snapshot(lab.registry, lab.store);
  let ticks = 0;
  const server = (ip: string) => {
    const s = lab.plan.cutover.servers.find((x) => x.ip === ip);
    return `${ip} (${s?.side ?? '?'}${s?.name ? `, ${s.name}` : ''})`;
  };
  const draw = async (whole = false) => {
    const cur = await snapshot(lab.registry, lab.store);
    const now = Date.now();
    const state = lab.dns.auth.state();
    const text = render({
      title: `mailprobe lab: ${LAB_MAIL_HOST} moves from ${server(LAB_OLD_IP)} to ${server(LAB_NEW_IP)}`,
      now,
      startedAt: lab.startedAt,
      endsAt: lab.endsAt,
      windowStart: lab.startedAt + t.windowStart,
      windowEnd: lab.startedAt + t.windowEnd,
      serving: state.serve,
      ttl: state.ttl,
      lastEvent: lab.events.at(-1)?.label,
      nextEvent: lab.steps.find((s) => s.at > now),
      figures: summarize(whole ? undefined : prev, cur),
      alerts: await firing(lab),
      collectorUrl: lab.collectorUrl,
      ...(whole ? { final: { events: lab.events } } : {}),
    });
    prev = cur;
    if (plain) out(`\n${text}\n`);
    else out(`\x1b[H\x1b[2J${text}\n`);
  };
  const every = plain ? 10_000 : 2_000;
  const timer = setInterval(() => {
    ticks++;
    void draw();
  }, every);

  const reason = await Promise.race([lab.done.then(() => 'end' as const), signal]);
  clearInterval(timer);
  if (reason === 'end') {
    await draw(true);
    if (lab.prometheus) {
      try {
        // A couple of scrapes more, so the last steps are in Prometheus.
        await lab.prometheus.waitForScrapes(2);
        const r = await writeReport({ prometheus: lab.prometheus.url, from: lab.startedAt / 1000, to: Date.now() / 1000, outDir: dirname(logFile) });
        out(`\nmailprobe lab: cutover report at ${r.html}\nmailprobe lab: (Markdown for a ticket: ${r.markdown})\n`);
      } catch (e) {
        out(`\nmailprobe lab: the cutover report failed: ${(e as Error).message}\n`);
      }
    } else out('\nmailprobe lab: no cutover report (Prometheus is not installed: apt-get install prometheus)\n');
  }
  out(`\nmailprobe lab: ${reason === 'end' ? 'timeline finished' : `stopping on ${reason}`}; stopping every part\n`);
  await lab.stop();
  logger.flush();
  out(`mailprobe lab: stopped after ${ticks} updates\n`);
  return 0;
}
