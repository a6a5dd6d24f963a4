/**
 * The cutover plan (DESIGN §3): one YAML file for probes and collector.
 *
 * Defaults live in the schema. Durations are written `15s`, `5m`, `1h` (or `250ms`, `2d`,
 * combined like `1h30m`) and decode to milliseconds; sizes are bytes or `64MiB`/`512KiB`.
 * `errorMessage` on a schema is the rule named when a value breaks it.
 */
import { Type, type Static, type StaticDecode, type TSchema } from '@sinclair/typebox';
import { FormatRegistry } from '@sinclair/typebox';
import { isIP } from 'node:net';
import { ID_PATTERN } from '../protocol/wire.js';

FormatRegistry.Set('ip', (v) => isIP(v) !== 0);
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)));
FormatRegistry.Set('hostname', (v) => HOSTNAME_RE.test(v));

const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

const DURATION_PATTERN = '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$';
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `1h30m`, `15s`, `250ms` into milliseconds. */
export function parseDuration(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 0);
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

export function parseSize(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  return Math.round(Number(m?.[1]) * (SIZE_UNITS[(m?.[2] ?? '').toLowerCase()] ?? Number.NaN));
}

/** A duration such as `15s`, decoded to milliseconds. */
export const Duration = (def: string, description: string) =>
  Type.Transform(Type.String({ pattern: DURATION_PATTERN, default: def, description: `${description} Default ${def}.`, errorMessage: 'must be a duration such as 15s, 5m or 1h' }))
    .Decode(parseDuration)
    .Encode(formatDuration);

/** A size in bytes: a number or `64MiB`, `512KiB`, `1MB`. */
export const Size = (def: string, description: string) =>
  Type.Transform(
    Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^\\d+(\\.\\d+)?\\s*([kKmMgG]i?[bB]|[bB])?$' })], {
      default: def,
      description: `${description} Default ${def}.`,
      errorMessage: 'must be a size such as 1048576, 512KiB or 64MiB',
    }),
  )
    .Decode(parseSize)
    .Encode((n: number) => n);

const Ip = (description: string) => Type.String({ format: 'ip', description, errorMessage: 'must be an IPv4 or IPv6 address' });
const Hostname = (description: string) => Type.String({ format: 'hostname', description, errorMessage: 'must be a host name such as mail.company.com' });
const Listen = (def: string, description: string) =>
  Type.String({
    pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):\\d{1,5}$',
    default: def,
    description: `${description} Default ${def}.`,
    errorMessage: 'must be host:port, such as 0.0.0.0:9464 or [::1]:9464',
  });
const obj = <T extends Record<string, TSchema>>(props: T, description: string, withDefault = true) =>
  Type.Object(props, { additionalProperties: false, description, ...(withDefault ? { default: {} } : {}) });

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
    servers: Type.Array(Server, { minItems: 2, maxItems: 32, description: 'The old and the new servers.', errorMessage: 'must list at least one old and one new server' }),
    /** The cutover window, RFC 3339. Inside it probes run at window_interval and alerts page. */
    window: Type.Object(
      {
        start: Type.String({ format: 'date-time', errorMessage: 'must be an RFC 3339 time such as 2026-12-04T20:00:00Z' }),
        end: Type.String({ format: 'date-time', errorMessage: 'must be an RFC 3339 time such as 2026-12-05T02:00:00Z' }),
      },
      { additionalProperties: false, description: 'The cutover window.' },
    ),
    /** DKIM selectors to check. Default none. */
    dkim_selectors: Type.Array(Type.String({ pattern: '^[A-Za-z0-9._-]{1,63}$', errorMessage: 'must be a DNS label' }), { default: [], maxItems: 16 }),
    /** DNS blocklist zones to check each server IP against. Default none. */
    dnsbl: Type.Array(Hostname('A blocklist zone.'), { default: [], maxItems: 32 }),
    /** The envelope (MAIL FROM) domain SPF is evaluated for. Default: domain. */
    spf_domain: Type.Optional(Hostname('SPF domain.')),
  },
  { additionalProperties: false },
);

export const Smtp = obj(
  {
    /** Default 25. Use 587 (STARTTLS) or 465 (implicit TLS) where outbound 25 is blocked. */
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 25, errorMessage: 'must be a port from 1 to 65535' }),
    /** `rcpt` stops after RCPT (delivers nothing); `data` delivers a small marked message. Default rcpt. */
    mode: Type.Union([Type.Literal('rcpt'), Type.Literal('data')], { default: 'rcpt', errorMessage: 'must be "rcpt" or "data"' }),
    /** `opportunistic` STARTTLS if offered, `required` fails without it, `implicit` TLS on connect (465), `none`. Default opportunistic. */
    tls: Type.Union([Type.Literal('opportunistic'), Type.Literal('required'), Type.Literal('implicit'), Type.Literal('none')], {
      default: 'opportunistic',
      errorMessage: 'must be one of opportunistic, required, implicit, none',
    }),
    /** Envelope sender. Default probe@probes.invalid. */
    from: Type.String({ default: 'probe@probes.invalid', format: 'email-ish', errorMessage: 'must be an address such as probe@probes.example' }),
    /** Envelope recipient at the mail host. Default postmaster@<domain>. */
    to: Type.Optional(Type.String({ format: 'email-ish', errorMessage: 'must be an address such as postmaster@company.com' })),
    /** Name sent in EHLO. Default: the machine's host name. */
    helo: Type.Optional(Hostname('EHLO name.')),
    /** Optional AUTH; the password is read from the named environment variable. */
    auth: Type.Optional(Type.Object({ user: Type.String({ minLength: 1 }), pass_env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' }) }, { additionalProperties: false })),
  },
  'The smtp check.',
);

export const Roundtrip = Type.Object(
  {
    /** Address at the mail host whose mail the server relays back to the sink. */
    to: Type.String({ format: 'email-ish', errorMessage: 'must be an address such as mailprobe-rt@company.com' }),
    /** Environment variable holding the HMAC secret that signs test messages. Default MAILPROBE_RT_SECRET. */
    secret_env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', default: 'MAILPROBE_RT_SECRET' }),
    /** A message not arrived by then counts as lost. Default 10m. */
    deadline: Duration('10m', 'A message not arrived by then counts as lost.'),
    sink: obj(
      {
        /** Where the sink listens for relayed mail. Default 0.0.0.0:2525. */
        listen: Listen('0.0.0.0:2525', 'Where the sink listens.'),
        /** Largest message the sink takes. Default 256KiB. */
        max_size: Size('256KiB', 'Largest message the sink takes.'),
      },
      'The round-trip sink.',
    ),
  },
  { additionalProperties: false },
);

export const Push = obj(
  {
    /** Collectors to push to; every batch goes to each (an HA pair). Default none (results are only spooled). */
    collectors: Type.Array(Type.String({ pattern: '^https?://', errorMessage: 'must be an http:// or https:// URL' }), { default: [], maxItems: 8 }),
    /** Environment variable holding this probe's bearer token. Default MAILPROBE_TOKEN. */
    token_env: Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', default: 'MAILPROBE_TOKEN' }),
    /** A batch is sent when it has this many results… Default 500. */
    batch_max_results: Type.Integer({ minimum: 1, maximum: 5000, default: 500 }),
    /** …or its oldest result is this old. Default 5s. */
    batch_max_age: Duration('5s', 'Oldest result age that triggers a push.'),
    /** Spool directory for batches not yet accepted. Default ./.mailprobe-spool/<probe id>. */
    spool_dir: Type.Optional(Type.String({ minLength: 1 })),
    /** Spool size limit; when full, the oldest batches are dropped and counted. Default 64MiB. */
    spool_max_bytes: Size('64MiB', 'Spool size limit.'),
  },
  'Pushing results to collectors.',
);

export const Probes = obj(
  {
    /** Check interval outside the window. Default 60s. */
    interval: Duration('60s', 'Check interval outside the window.'),
    /** Check interval inside the cutover window. Default 15s. */
    window_interval: Duration('15s', 'Check interval inside the window.'),
    /** Per-check timeout. Default 10s. */
    timeout: Duration('10s', 'Per-check timeout.'),
    /** Checks running at once. Default 16. */
    concurrency: Type.Integer({ minimum: 1, maximum: 1024, default: 16 }),
    /** Resolvers: `system` (/etc/resolv.conf), `IP`, `IP:port`, `[v6]:port`, `tls://host[:port]`, `https://host/dns-query`. Default [system]. */
    resolvers: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { default: ['system'], minItems: 1, maxItems: 256 }),
    /** Authoritative servers to ask directly (host or host:port). Default: the zone's NS records. */
    authoritative: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 16 })),
    /** With no resolver answering the old IP for this long, decommissioning is safe. Default 24h. */
    decommission_quiet: Duration('24h', 'Quiet time before decommissioning is safe.'),
    smtp: Smtp,
    roundtrip: Type.Optional(Roundtrip),
    push: Push,
  },
  'Probe settings.',
);

export const Collector = obj(
  {
    /** Listen address. Default 0.0.0.0:9464; env MAILPROBE_LISTEN overrides. */
    listen: Listen('0.0.0.0:9464', 'Listen address.'),
    /** Probe id → `sha256:<hex>` of its bearer token. Make one with `mailprobe token`. */
    tokens: Type.Record(Type.String({ pattern: ID_PATTERN }), Type.String({ pattern: '^sha256:[0-9a-f]{64}$', errorMessage: 'must be sha256:<64 hex digits> (see `mailprobe token`)' }), {
      default: {},
      errorMessage: 'keys must be probe ids (letters, digits, . _ -) and values sha256:<64 hex digits>',
    }),
    /** Largest request body. Default 1MiB. */
    body_limit: Size('1MiB', 'Largest request body.'),
    /** Distinct series one probe may create; batches beyond it are rejected. Default 20000. */
    max_series_per_probe: Type.Integer({ minimum: 1, default: 20_000 }),
    /** Label values are cut to this many characters. Default 128. */
    max_label_length: Type.Integer({ minimum: 8, maximum: 1024, default: 128 }),
    /** Gauges of a probe silent this long are removed. Default 15m. */
    probe_stale_after: Duration('15m', 'Silence after which a probe gauges are removed.'),
    /** Batch ids remembered for de-duplication. Default 100000. */
    dedup_batches: Type.Integer({ minimum: 1, default: 100_000 }),
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
