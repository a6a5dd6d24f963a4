/**
 * The mta contract: what a log follower (`mailprobe mta-log`) beside a mail server saw in one
 * interval: inbound SMTP sessions and accepted messages per server IP, by client network (the
 * follower keeps the top networks and folds the rest into "other", so a push has a bounded
 * number of series), the time of the last inbound session per IP, and the lines it read. The old
 * server's own traffic is the evidence that decides when it can be turned off.
 */
import { Type, type Static } from '@sinclair/typebox';
import { b, defineCheck, failedFields, Label, resultSchema, Side, type FailedRun } from './common.js';

/** The client-network label of everything outside the top networks of an interval. */
export const OTHER_NET = 'other';
/** Most client networks one IP's counts name per result (plus "other"). */
export const MAX_NETS = 64;

const Count = () => Type.Integer({ minimum: 0, maximum: 1_000_000_000 });
const NetCounts = () =>
  Type.Array(Type.Object({ net: Label({ description: 'Client network (CIDR) or "other".' }), count: Count() }, { additionalProperties: false }), {
    maxItems: MAX_NETS + 1,
  });

export const MtaResult = resultSchema(
  'mta',
  {
    ips: Type.Array(
      Type.Object(
        {
          ip: Label({ description: 'The server IP the sessions arrived on (an IP of the plan).' }),
          side: Side,
          sessions: NetCounts(),
          messages: NetCounts(),
          lastSessionAt: Type.Integer({
            minimum: 0,
            maximum: 4_102_444_800_000,
            description:
              'Unix ms of the last inbound session on this IP; when none was seen since the follower started, when it started (no session since then).',
          }),
          quiet: Type.Boolean({ description: 'No inbound session for probes.decommission_quiet (the follower read the log at least that long).' }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 64 },
    ),
    lines: Count(),
    unknownLines: Count(),
  },
  'What a mail server log follower saw in one interval: inbound sessions and accepted messages per server IP by client network.',
);
export type MtaResult = Static<typeof MtaResult>;

/** The server IPs a follower reports on (every interval, also without traffic). */
export interface MtaTarget {
  ips: readonly { ip: string; side: 'old' | 'new' }[];
}

const failedMta = (run: FailedRun): MtaResult => ({ type: 'mta', ...failedFields(run), ips: [], lines: 0, unknownLines: 0 });

export const mtaDef = defineCheck({
  type: 'mta',
  result: MtaResult,
  // Its settings are the follower's command line (mailprobe mta-log), not the plan.
  settings: {},
  failed: (_target: MtaTarget, run) => [failedMta(run)],
  failedLike: (_r, run) => failedMta(run),
  samples(r, ops) {
    // `server` is the follower (its probe id): the MTA host whose log it reads.
    const server = ops.at('server', ops.probe);
    for (const x of r.ips) {
      const o = server.at('ip', x.ip).at('side', x.side);
      for (const s of x.sessions) if (s.count > 0) o.at('client_net', s.net).inc('mtaInboundSessions', s.count);
      for (const m of x.messages) if (m.count > 0) o.at('client_net', m.net).inc('mtaInboundMessages', m.count);
      o.set('mtaLastInboundSession', x.lastSessionAt / 1000);
      o.set('mtaInboundQuiet', b(x.quiet));
    }
    server.at('result', 'known').inc('mtaLogLines', r.lines - r.unknownLines);
    server.at('result', 'unknown').inc('mtaLogLines', r.unknownLines);
  },
});
