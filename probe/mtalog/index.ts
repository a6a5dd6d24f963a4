/**
 * The mail server log follower (`mailprobe mta-log`): reads an MTA's log (Postfix or Exim, from
 * a file or a stream), tallies inbound sessions and accepted messages per server IP and client
 * network, and reports them every interval through the probe runtime (same spool, token,
 * batches and pusher as a probe; its id in `collector.tokens`), as `mta` results.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Readable } from 'node:stream';
import type { Log as Logger } from '../log.js';
import type { PlanConfig } from '../../config/schema.js';
import { register } from '../checks/index.js';
import { mtaLogCheck } from '../checks/mta.js';
import { createProbe, type Probe } from '../runtime.js';
import type { LineParser } from './event.js';
import { EximParser } from './exim.js';
import { followFile, streamLines, type LineSource } from './follow.js';
import { PostfixParser } from './postfix.js';
import { Tally } from './tally.js';

export const FORMATS = ['postfix', 'exim'] as const;
export type LogFormat = (typeof FORMATS)[number];

export function parserFor(format: LogFormat, now?: () => number): LineParser {
  return format === 'exim' ? new EximParser() : new PostfixParser(now ? { now } : {});
}

export interface MtaLogOptions {
  plan: PlanConfig;
  id: string;
  region: string;
  token?: string;
  format: LogFormat;
  /** A file to follow, or a stream to read to its end. */
  input: { file: string; fromStart?: boolean; pollMs?: number } | { stream: Readable };
  /** Server IPs of the plan this MTA receives on; with `service`, the Postfix syslog_name logging for it. */
  ips: readonly { ip: string; service?: string | undefined }[];
  /** Client networks not counted (CIDR): the probes' own SMTP checks would keep the old IP busy forever. */
  ignoreClients?: readonly string[];
  topNetworks?: number;
  v4Prefix?: number;
  v6Prefix?: number;
  now?: () => number;
  logger?: Logger;
  spoolDir?: string;
  healthListen?: string;
}

export interface MtaLog {
  readonly probe: Probe;
  readonly tally: Tally;
  /** Resolves when a stream input has ended (never for a file until stop()). */
  readonly ended: Promise<void>;
  start(): Promise<void>;
  /** Stops reading, reports the last interval, pushes what it can. */
  stop(): Promise<void>;
}

/** A block list of CIDRs (`192.0.2.0/24`, `2001:db8::/32`, or one address); throws naming a bad one. */
export function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr = '', bits] = c.split('/');
    const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
    const max = family === 'ipv4' ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits)))
      throw new Error(`${JSON.stringify(c)} is not an address or CIDR network (192.0.2.0/24, 2001:db8::/32)`);
    list.addSubnet(addr, prefix, family);
  }
  return list;
}

export function createMtaLog(o: MtaLogOptions): MtaLog {
  const now = o.now ?? Date.now;
  const sideOf = new Map(o.plan.cutover.servers.map((s) => [s.ip, s.side]));
  const ips = o.ips.map(({ ip }) => {
    const side = sideOf.get(ip);
    if (side === undefined) throw new Error(`${ip} is not a server IP of the plan (cutover.servers)`);
    return { ip, side };
  });
  const services: Record<string, string> = {};
  for (const x of o.ips) if (x.service) services[x.service] = x.ip;
  const unnamed = o.ips.filter((x) => !x.service);
  const tally = new Tally({
    ips,
    services,
    defaultIp: unnamed.length === 1 ? unnamed[0]?.ip : undefined,
    topN: o.topNetworks ?? 10,
    v4Prefix: o.v4Prefix ?? 24,
    v6Prefix: o.v6Prefix ?? 48,
    startedAt: now(),
    quietMs: o.plan.probes.decommission_quiet,
    ...(o.ignoreClients && o.ignoreClients.length > 0 ? { ignore: blockList(o.ignoreClients) } : {}),
  });
  const parser = parserFor(o.format, now);
  const onLine = (line: string): void => tally.add(parser.parse(line), now());
  const target = { ips };
  const probe = createProbe({
    plan: o.plan,
    id: o.id,
    region: o.region,
    ...(o.token !== undefined ? { token: o.token } : {}),
    registry: { mta: register(mtaLogCheck(tally, target)) },
    now,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.spoolDir ? { spoolDir: o.spoolDir } : {}),
    ...(o.healthListen ? { healthListen: o.healthListen } : {}),
  });
  let source: LineSource | undefined;
  let resolveEnded!: () => void;
  const ended = new Promise<void>((r) => {
    resolveEnded = r;
  });
  let stopped = false;
  return {
    probe,
    tally,
    ended,
    async start() {
      await probe.start();
      const log = o.logger;
      source =
        'file' in o.input
          ? followFile({
              path: o.input.file,
              onLine,
              ...(o.input.fromStart ? { fromStart: true } : {}),
              ...(o.input.pollMs ? { pollMs: o.input.pollMs } : {}),
              ...(log ? { log } : {}),
            })
          : streamLines(o.input.stream, onLine);
      void source.ended.then(resolveEnded);
      log?.info({ format: o.format, input: 'file' in o.input ? o.input.file : 'stdin', ips }, 'following the mail server log');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await source?.stop();
      // The last interval's counts, whatever the scheduler last took.
      const t = now();
      probe.record([{ type: 'mta', startedAt: t, durationSeconds: 0, ok: true, ...tally.drain(t) }]);
      await probe.stop();
    },
  };
}
