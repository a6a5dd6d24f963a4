/**
 * The cutover plan (README, configuration reference): one YAML file for probes and collector.
 *
 * Each check type's settings are part of its definition (`protocol/checks/<type>.ts`); this file
 * composes them into the plan with the sections that belong to no one check (the servers, the
 * window, the resolvers, the DNS client, pushing, the collector).
 *
 * Defaults live in the schema. Durations are written `15s`, `5m`, `1h` (or `250ms`, `2d`,
 * combined like `1h30m`) and decode to milliseconds; sizes are bytes or `64MiB`/`512KiB`
 * (protocol/settings.ts). `errorMessage` on a schema is the rule named when a value breaks it.
 */
import { Type, type Static, type StaticDecode } from '@sinclair/typebox';
import { FormatRegistry } from '@sinclair/typebox';
import { settingsFields } from '../protocol/checks/index.js';
import { bound, DURATION_PATTERN, Duration, formatDuration, Hostname, Ip, Listen, ListenAddress, obj, parseDuration, Size, Url } from '../protocol/settings.js';
import { COLLECTOR_JOB } from '../protocol/metrics.js';
import { ID_PATTERN } from '../protocol/wire.js';
import {
  hostnameProblem,
  parseAuthoritative,
  parseDnsServer,
  parseHttpUrl,
  parseListen,
  parseResolverSpec,
  specProblem,
  type AuthoritativeSpec,
  type ResolverSpec,
} from './specs.js';
import { CATALOGUE_SELECTORS, expandResolvers } from './catalogue.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { isIP } = process.getBuiltinModule('node:net');

FormatRegistry.Set('ip', (v) => isIP(v) !== 0);
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)));

/**
 * Formats checked by the grammar of config/specs.ts: the rule named for a bad value is the
 * grammar's own reason (see {@link specFormatProblem}), not a fixed message.
 */
const SPEC_FORMATS: Record<string, (text: string) => string | null> = {
  'mailprobe-hostname': hostnameProblem,
  'mailprobe-resolver': (v) => specProblem(parseResolverSpec, v),
  'mailprobe-authoritative': (v) => specProblem(parseAuthoritative, v),
  'mailprobe-listen': (v) => specProblem(parseListen, v),
  'mailprobe-dns-server': (v) => specProblem(parseDnsServer, v),
  'mailprobe-url': (v) => specProblem(parseHttpUrl, v),
};
for (const [name, problem] of Object.entries(SPEC_FORMATS)) FormatRegistry.Set(name, (v) => problem(v) === null);

/** The grammar's reason why `value` breaks a spec format, or null when `format` is no spec format. */
export function specFormatProblem(format: string, value: unknown): string | null {
  const problem = SPEC_FORMATS[format];
  return problem && typeof value === 'string' ? problem(value) : null;
}

export { BOUND, type Bound, formatDuration, parseDuration, parseSize } from '../protocol/settings.js';

/** A resolver spec, decoded to its parsed form (config/specs.ts). */
const Resolver = (description: string) =>
  Type.Transform(
    Type.String({
      format: 'mailprobe-resolver',
      maxLength: 200,
      description,
      errorMessage: 'must be a resolver such as system, 8.8.8.8 or tls://dns.quad9.net',
    }),
  )
    .Decode((v): ResolverSpec => parseResolverSpec(v))
    .Encode((r: ResolverSpec) => r.label);
/** An authoritative server `host`/`host:port`, decoded to its parsed form (config/specs.ts). */
const Authoritative = (description: string) =>
  Type.Transform(
    Type.String({
      format: 'mailprobe-authoritative',
      maxLength: 260,
      description,
      errorMessage: 'must be host or host:port, such as ns1.company.com or 192.0.2.53:53',
    }),
  )
    .Decode((v): AuthoritativeSpec => parseAuthoritative(v))
    .Encode((a: AuthoritativeSpec) => a.label);
/** A resolver's name for panels, alerts and the lab view (the `resolver_name` label). */
const ResolverName = Type.String({ minLength: 1, maxLength: 64, description: 'A name for dashboards and alerts, such as the operator.' });

export const Server = Type.Object(
  {
    /** The server's public IP. */
    ip: Ip('The server IP.'),
    /** `old` (provider A, being left) or `new` (provider B). */
    side: Type.Union([Type.Literal('old'), Type.Literal('new')], { errorMessage: 'must be "old" or "new"', description: 'old or new.' }),
    /** A name for dashboards, such as the provider. Default: the IP. */
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A name for dashboards. Default: the IP.' })),
    /** SMTP port to probe on this server. Default: probes.smtp.port. */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, errorMessage: 'must be a port from 1 to 65535' })),
  },
  { additionalProperties: false },
);

export const Cutover = Type.Object(
  {
    /** The mail domain (envelope and DMARC domain). */
    domain: Hostname('The mail domain.'),
    /** The host name that moves, e.g. mail.company.com; certificates must be valid for it. */
    mail_host: Hostname('The host name that moves.'),
    /** The old and the new servers; both sides must be present. */
    servers: Type.Array(Server, {
      minItems: 2,
      maxItems: 32,
      description: 'The old and the new servers.',
      errorMessage: 'must list at least one old and one new server',
    }),
    /** The cutover window, RFC 3339. Inside it probes run at window_interval and alerts page. */
    window: Type.Object(
      {
        start: Type.String({ format: 'date-time', errorMessage: 'must be an RFC 3339 time such as 2026-12-04T20:00:00Z' }),
        end: Type.String({ format: 'date-time', errorMessage: 'must be an RFC 3339 time such as 2026-12-05T02:00:00Z' }),
      },
      { additionalProperties: false, description: 'The cutover window.' },
    ),
    /** What the checks need to know of the move (DKIM selectors, blocklists…), from their definitions. */
    ...settingsFields('cutover'),
  },
  { additionalProperties: false },
);

export const Push = obj(
  {
    /** Collectors to push to; every batch goes to each (an HA pair). Default none (results are only spooled). */
    collectors: Type.Array(Url('A collector URL, such as https://collector-a.example:9464.'), { default: [], maxItems: 8 }),
    /** Environment variable holding this probe's bearer token. Default MAILPROBE_TOKEN. */
    token_env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', default: 'MAILPROBE_TOKEN' }),
    /** A batch is sent when it has this many results… Default 500. */
    batch_max_results: Type.Integer({ minimum: 1, maximum: 5000, default: 500 }),
    /** …or its oldest result is this old. Default 5s. */
    batch_max_age: Duration('5s', 'Oldest result age that triggers a push.'),
    /** Spool directory for batches not yet accepted. Default ./.mailprobe-spool/<probe id>. */
    spool_dir: Type.Optional(Type.String({ minLength: 1 })),
    /** Spool size limit; when full, the oldest batches are dropped and counted. Default 64MiB. */
    spool_max_bytes: Size('64MiB', 'Spool size limit.', '64GiB'),
    /** First retry delay after a failed push; it doubles per failure (with jitter) up to retry_max. Default 1s. */
    retry_min: Duration('1s', 'First retry delay after a failed push.'),
    /** Longest retry delay (also used while a collector rejects the token). Default 30s. */
    retry_max: Duration('30s', 'Longest retry delay.'),
    /** A push that has not answered by then is retried. Default 10s. */
    request_timeout: Duration('10s', 'Timeout of one push request.', '5m'),
    /** Batches wait and no collector has accepted one for this long: the probe's /healthz says degraded (503). Default 3 × retry_max. */
    degraded_after: Type.Optional(
      Type.Transform(
        Type.String({
          pattern: DURATION_PATTERN,
          description: 'Batches wait and no collector accepted one for this long: /healthz reports degraded. Default 3 × retry_max.',
          errorMessage: 'must be a duration such as 15s, 5m or 1h',
          ...bound('duration', '1d'),
        }),
      )
        .Decode(parseDuration)
        .Encode(formatDuration),
    ),
  },
  'Pushing results to collectors.',
);

/**
 * `probes.dns`: the DNS client every DNS-side check shares (and the smtp check's TLSA lookup),
 * then the fields the checks add from their definitions (record types, TTL slack, MTA-STS…).
 */
export const DnsChecks = obj(
  {
    /** Timeout of one DNS transport attempt (UDP, then TCP on truncation). Default 3s. */
    query_timeout: Duration('3s', 'Timeout of one DNS transport attempt.', '5m'),
    /** EDNS UDP payload size advertised. Default 1232. */
    edns_payload: Type.Integer({ minimum: 512, maximum: 4096, default: 1232 }),
    /** The resolver rdns, auth and dnsbl look up through (and NS discovery uses). Default: the first of probes.resolvers. */
    lookup_resolver: Type.Optional(Resolver('The resolver rdns, auth and dnsbl look up through.')),
    ...settingsFields('probes.dns'),
  },
  'The DNS-side checks.',
);

export const Probes = obj(
  {
    /** Check interval outside the window. Default 60s. */
    interval: Duration('60s', 'Check interval outside the window.'),
    /** Check interval inside the cutover window. Default 15s. */
    window_interval: Duration('15s', 'Check interval inside the window.', '1h'),
    /** Per-check timeout. Default 10s. */
    timeout: Duration('10s', 'Per-check timeout.', '5m'),
    /** Checks running at once. Default 16. */
    concurrency: Type.Integer({ minimum: 1, maximum: 1024, default: 16 }),
    /**
     * Resolvers: a spec (`system` (/etc/resolv.conf), `IP`, `IP:port`, `[v6]:port`, `tls://host[:port]`,
     * `https://host/dns-query`), `{ address: spec, name }`, or `{ catalogue: group, ipv6? }` for the
     * built-in public resolvers (config/catalogue.ts). Decoded to parsed specs carrying the name
     * (none for a plain spec), groups expanded, an address listed twice kept once. Default [system].
     */
    resolvers: Type.Transform(
      Type.Array(
        Type.Union([
          Type.String({
            format: 'mailprobe-resolver',
            maxLength: 200,
            description: 'system, IP, IP:port, [v6]:port, tcp://IP[:port], tls://host[:port] or https://host/dns-query.',
          }),
          Type.Object({ address: Type.String({ format: 'mailprobe-resolver', maxLength: 200 }), name: ResolverName }, { additionalProperties: false }),
          Type.Object(
            {
              catalogue: Type.Union(
                CATALOGUE_SELECTORS.map((c) => Type.Literal(c)),
                { description: 'all, a region (global, europe, russia, china, north-america) or an operator id.' },
              ),
              ipv6: Type.Optional(Type.Boolean({ description: 'Also the IPv6 addresses. Default false.' })),
            },
            { additionalProperties: false },
          ),
        ]),
        { default: ['system'], minItems: 1, maxItems: 256 },
      ),
    )
      .Decode((entries): ResolverSpec[] => expandResolvers(entries).map((r) => parseResolverSpec(r.address, r.name === r.address ? undefined : r.name)))
      .Encode((specs) => specs.map((r) => (r.name === undefined ? r.label : { address: r.label, name: r.name }))),
    /** Authoritative servers to ask directly (host or host:port). Default: the zone's NS records. */
    authoritative: Type.Optional(Type.Array(Authoritative('host, host:port, IPv6 or [v6]:port.'), { maxItems: 16 })),
    /** The checks' own settings from their definitions: decommission_quiet (ttl), roundtrip, smtp. */
    ...settingsFields('probes'),
    /** The DNS-side checks. */
    dns: DnsChecks,
    push: Push,
    /** Where the probe serves /healthz and its own /metrics (host:port; port 0 picks one). Default off; env MAILPROBE_HEALTH_LISTEN. */
    health_listen: Type.Optional(ListenAddress('Where the probe serves /healthz and /metrics (host:port, such as 127.0.0.1:9465). Default off.')),
  },
  'Probe settings.',
);

/** Below the 5-minute staleness window of PromQL: `30s`, `1m`, `4m30s`, at most `4m59s`. */
const RESEND_PATTERN = '^([1-9]\\d?s|[12]\\d\\ds|[1-4]m([1-9]s|[1-5]\\ds)?)$';

/**
 * Remote write (README, configuration reference): the collector also sends every sample, with the probe's timestamp, to
 * a Prometheus remote-write receiver (Prometheus with --web.enable-remote-write-receiver, Mimir,
 * Thanos Receive, VictoriaMetrics). /metrics keeps working beside it.
 */
export const RemoteWrite = obj(
  {
    /** Set false to keep the section but not send. Default true. */
    enabled: Type.Boolean({ default: true, description: 'Send samples. Default true.' }),
    /** The receiver, e.g. http://prometheus:9090/api/v1/write or http://mimir/api/v1/push. Required. */
    url: Url('Remote-write receiver URL.'),
    /** Environment variable holding a bearer token sent as `Authorization: Bearer …`. Default none. */
    bearer_token_env: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', errorMessage: 'must be an environment variable name' })),
    /** Extra request headers, e.g. `X-Scope-OrgID` for Mimir. Default none. */
    headers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String(), { default: {}, errorMessage: 'must map header names to values' }),
    /** `job` label on every series (the collector alerts and rules select it). Default mailprobe-collector. */
    job: Type.String({ minLength: 1, maxLength: 128, default: COLLECTOR_JOB }),
    /**
     * Also keep the results on /metrics (both outputs at once). Set false for large fleets: /metrics
     * then carries only the collector's own metrics, and the replica neither holds nor renders the
     * results a second time (rendering ~1000 series per probe on each scrape is what limits a
     * replica in /metrics mode, see bench/fleet). Default true.
     */
    results_on_metrics: Type.Boolean({ default: true, description: 'Also expose the results on /metrics. Default true.' }),
    /** `instance` label on every series: this replica's id; the rules drop it with `max without (instance)`. Default env MAILPROBE_REPLICA, else the host name. */
    replica: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    /** Samples per request. Default 2000. */
    batch_size: Type.Integer({ minimum: 1, maximum: 100_000, default: 2000 }),
    /** Requests in flight at once; each series always goes through the same one, so its samples stay in order. Default 4. */
    shards: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
    /** A partial batch is sent after this long. Default 1s. */
    flush_interval: Duration('1s', 'Longest wait before a partial batch is sent.'),
    /** Samples waiting to be sent; beyond it the oldest are dropped and counted. Default 500000. */
    queue_max_samples: Type.Integer({ minimum: 1, default: 500_000 }),
    /**
     * Series not sent for this long are sent again with their last value at the current time, so
     * they never go stale (must stay below 5m) and rate() windows hold samples as when scraped:
     * it plays the part of the scrape interval. Series that change with every check (every 15 s
     * in the window) are not resent. Default 30s (two samples in the dashboards' 1m windows).
     */
    resend_interval: Type.Transform(
      Type.String({
        pattern: RESEND_PATTERN,
        default: '30s',
        description: 'Resend interval of unchanged series (like a scrape interval), below 5m. Default 30s.',
        errorMessage: 'must be a duration below 5m (the staleness window), such as 30s, 1m or 4m',
      }),
    )
      .Decode(parseDuration)
      .Encode(formatDuration),
    /** First retry delay after a 5xx, 429 or network error; doubles per failure up to retry_max. Default 200ms. */
    retry_min: Duration('200ms', 'First retry delay.'),
    /** Longest retry delay. Default 30s. */
    retry_max: Duration('30s', 'Longest retry delay.'),
    /** A request that has not answered by then counts as failed and is retried. Default 10s. */
    request_timeout: Duration('10s', 'Timeout of one remote-write request.', '5m'),
  },
  'Remote write to a Prometheus remote-write receiver.',
  false,
);

/** A digest made by `mailprobe token` (`sha256:<hex>`): the secret itself never sits in the plan. */
const Digest = (description: string) =>
  Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description, errorMessage: 'must be sha256:<64 hex digits> (see `mailprobe token`)' });

/** The status page (`GET /`) and its JSON (`GET /v1/status`), served from the collector's own state. */
export const Status = obj(
  {
    /** Serve the status page and /v1/status. Default true. */
    enabled: Type.Boolean({ default: true, description: 'Serve / and /v1/status. Default true.' }),
    /** How often the page reloads itself (meta refresh). Default 10s. */
    refresh: Duration('10s', 'How often the page reloads itself.'),
    /** A read token (its sha256: digest): readers send `Authorization: Bearer <token>` or `?token=<token>`. Default none. */
    read_token: Type.Optional(Digest('Digest of the read token.')),
    /** Basic auth for browsers: the user and the sha256: digest of the password (`mailprobe token --hash PASSWORD`). Default none. */
    basic_auth: Type.Optional(
      Type.Object(
        {
          user: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^:]+$', errorMessage: 'must be a user name without ":"' }),
          password: Digest('Digest of the password.'),
        },
        { additionalProperties: false },
      ),
    ),
  },
  'The status page. Open to anyone who reaches the collector unless read_token or basic_auth is set (either one then admits).',
);

const ID = Type.String({ pattern: ID_PATTERN });
const TokenHash = Digest('Digest of the probe token.');
const TokenEntry = Type.Object(
  {
    region: Type.String({ pattern: ID_PATTERN, errorMessage: 'must be a region (letters, digits, . _ -; at most 63)' }),
    hash: TokenHash,
  },
  { additionalProperties: false },
);

export const Collector = obj(
  {
    /** Listen address. Default 0.0.0.0:9464; env MAILPROBE_LISTEN overrides. */
    listen: Listen('0.0.0.0:9464', 'Listen address.'),
    /**
     * Probe id → its identity: `{ region, hash: sha256:<hex> }` binds the probe to its region (a push
     * under another region is refused with 409). The older form, only `sha256:<hex>`, still works:
     * the collector then binds the probe to the region of its first accepted push. Make one with
     * `mailprobe token --id ID --region R`.
     */
    tokens: Type.Record(
      ID,
      Type.Union([TokenHash, TokenEntry], {
        errorMessage: 'must be { region: <region>, hash: sha256:<64 hex digits> } or sha256:<64 hex digits> (see `mailprobe token`)',
      }),
      {
        default: {},
        additionalProperties: false,
        errorMessage: 'must be a probe id (letters, digits, . _ -; at most 63)',
      },
    ),
    /** Largest request body. Default 1MiB. */
    body_limit: Size('1MiB', 'Largest request body.', '256MiB'),
    /** Distinct series one probe may create; batches beyond it are rejected. Default 20000. */
    max_series_per_probe: Type.Integer({ minimum: 1, default: 20_000 }),
    /** Label values are cut to this many characters. Default 128. */
    max_label_length: Type.Integer({ minimum: 8, maximum: 1024, default: 128 }),
    /** Gauges of a probe silent this long are removed. Default 15m. */
    probe_stale_after: Duration('15m', 'Silence after which a probe gauges are removed.', '30d'),
    /** Batch ids remembered per probe for batches that carry no result sequence (older probes). Default 1000. */
    dedup_batches: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
    /** Pushes per second one probe may make (every push counts, empty and duplicate too); more → 429 with Retry-After. Default 10. */
    push_rate: Type.Number({ exclusiveMinimum: 0, maximum: 100_000, default: 10 }),
    /** Pushes a probe may make at once above push_rate (a backlog after an outage drains at push_rate). Default 20. */
    push_burst: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
    /** Also write samples to a Prometheus remote-write receiver. Default off (only /metrics). */
    remote_write: Type.Optional(RemoteWrite),
    /** The status page and /v1/status. */
    status: Status,
  },
  'Collector settings.',
);

export const Plan = Type.Object(
  { cutover: Cutover, probes: Probes, collector: Collector },
  { additionalProperties: false, $id: 'https://mailprobe.dev/schema/plan.json', title: 'mailprobe cutover plan' },
);

/** The plan as written (durations as text). */
export type PlanInput = Static<typeof Plan>;
/** The plan after validation: durations in ms, sizes in bytes, defaults filled, frozen. */
export type PlanConfig = DeepReadonly<StaticDecode<typeof Plan>>;
export type ServerConfig = PlanConfig['cutover']['servers'][number];

type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

FormatRegistry.Set('email-ish', (v) => /^[^\s@<>]{1,64}@[A-Za-z0-9._-]{1,253}$/.test(v));
