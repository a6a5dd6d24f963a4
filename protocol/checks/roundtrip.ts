/**
 * The roundtrip check's contract: one signed test message sent via a destination IP and received
 * (or not) at the sink, and the metrics it feeds.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, Hostname, Listen, ListenAddress, obj, Size, Url } from '../settings.js';
import { defineCheck, failedFields, Label, LABEL_MAX, resultSchema, Seconds, Side, type FailedRun } from './common.js';

export const VERDICTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy'] as const;
export const Verdict = Type.Union(VERDICTS.map((s) => Type.Literal(s)));

export const RoundtripResult = resultSchema(
  'roundtrip',
  {
    viaIp: Label(),
    side: Side,
    messageId: Type.String({ maxLength: LABEL_MAX }),
    delivered: Type.Boolean(),
    latencySeconds: Type.Optional(Seconds('Arrival minus send time.')),
    sameClock: Type.Boolean({ description: 'Sender and sink share one clock (same host).' }),
    deliveringIp: Type.Optional(Type.String({ maxLength: 64 })),
    helo: Type.Optional(Type.String({ maxLength: LABEL_MAX })),
    verdicts: Type.Optional(
      Type.Object(
        { spf: Verdict, dkim: Verdict, dmarc: Verdict, fcrdns: Type.Union([Type.Literal('pass'), Type.Literal('fail')]) },
        { additionalProperties: false },
      ),
    ),
  },
  'One signed test message sent via a destination IP and received (or not) at the sink.',
);
export type RoundtripResult = Static<typeof RoundtripResult>;

export interface RoundtripTarget {
  ip: string;
  side: Side;
  port: number;
  /** The sink runs in this probe (one clock for send and arrival): no probes.roundtrip.sink.url. */
  sameClock: boolean;
}

const failedRoundtrip = (t: { ip: string; side: RoundtripTarget['side']; sameClock: boolean }, run: FailedRun): RoundtripResult => ({
  type: 'roundtrip',
  ...failedFields(run),
  viaIp: t.ip,
  side: t.side,
  messageId: '',
  delivered: false,
  sameClock: t.sameClock,
});

/** Its settings: `probes.roundtrip`; without that section the check does not run. */
export const RoundtripSettings = Type.Object(
  {
    /** Address at the mail host whose mail the server relays back to the sink. */
    to: Type.String({ format: 'email-ish', errorMessage: 'must be an address such as mailprobe-rt@company.com' }),
    /** Environment variable holding the HMAC secret that signs test messages. Default MAILPROBE_RT_SECRET. */
    secret_env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', default: 'MAILPROBE_RT_SECRET' }),
    /** A message not arrived by then counts as lost. Default 10m. */
    deadline: Duration('10m', 'A message not arrived by then counts as lost.'),
    /** Envelope sender and From of test messages (its domain is what SPF/DMARC judge). Default: probes.smtp.from. */
    from: Type.Optional(Type.String({ format: 'email-ish', errorMessage: 'must be an address such as mailprobe@company.com' })),
    sink: obj(
      {
        /** Where the sink listens for relayed mail. Default 0.0.0.0:2525. */
        listen: Listen('0.0.0.0:2525', 'Where the sink listens.'),
        /** Largest message the sink takes. Default 256KiB. */
        max_size: Size('256KiB', 'Largest message the sink takes.', '64MiB'),
        /** Name the sink gives in its greeting and Authentication-Results. Default: the machine's host name. */
        name: Type.Optional(Hostname('Sink host name.')),
        /** DNS server (IP or IP:port) the sink asks for SPF, DKIM, DMARC and FCrDNS. Default: the system resolver. */
        resolver: Type.Optional(
          Type.String({
            format: 'mailprobe-dns-server',
            description: 'DNS server IP or IP:port, such as 127.0.0.1:5353.',
            errorMessage: 'must be an IP or IP:port, such as 127.0.0.1:5353',
          }),
        ),
        /** PEM certificate and key for the STARTTLS the sink offers. Default: smtp-server's built-in test certificate. */
        tls_cert_file: Type.Optional(Type.String({ minLength: 1 })),
        tls_key_file: Type.Optional(Type.String({ minLength: 1 })),
        /** Where the sink also serves its arrivals over HTTP for probes on other hosts (host:port). Default off. */
        http_listen: Type.Optional(ListenAddress('Where a standalone sink serves its arrivals (host:port, such as 0.0.0.0:2580).')),
        /** A sink on another host (its http_listen URL): the probe runs no sink and asks there; results say sameClock false. Default: a sink in the probe. */
        url: Type.Optional(Url('The arrivals URL of a sink on another host.')),
      },
      'The round-trip sink.',
    ),
  },
  { additionalProperties: false },
);

export const roundtripDef = defineCheck({
  type: 'roundtrip',
  result: RoundtripResult,
  settings: { probes: { roundtrip: Type.Optional(RoundtripSettings) } },
  failed: (target: RoundtripTarget, run) => [failedRoundtrip(target, run)],
  failedLike: (r, run) => failedRoundtrip({ ip: r.viaIp, side: r.side, sameClock: r.sameClock }, run),
  samples(r, ops) {
    const o = ops.at('via_ip', r.viaIp).at('side', r.side);
    if (r.delivered && r.latencySeconds !== undefined) o.observe('roundtripDuration', r.latencySeconds);
    // lost: sent but not arrived by the deadline; failed: the server did not take it (or the check could not send).
    o.at('result', r.delivered ? 'delivered' : r.errorClass === 'lost' ? 'lost' : 'failed').inc('roundtrips');
    if (r.verdicts) {
      for (const [method, verdict] of Object.entries(r.verdicts)) o.at('method', method).oneOf('roundtripAuth', verdict);
    }
  },
});
