/**
 * The words the plan's settings schemas are written in: durations (`15s`, decoded to ms), sizes
 * (`64MiB`, decoded to bytes), host names, listen addresses, URLs. They sit on the ground floor
 * because each check type's definition (`protocol/checks/<type>.ts`) carries the schema of its
 * own settings, and `config/schema.ts` composes the plan from those and its own sections.
 *
 * Formats named here (`mailprobe-hostname`, `mailprobe-listen`, `mailprobe-url`,
 * `mailprobe-dns-server`, `email-ish`, `ip`) are registered with their grammar by config/schema.ts
 * (config/specs.ts): only the config loader validates a plan. `errorMessage` on a schema is the
 * rule named when a value breaks it.
 */
import { Type, type TSchema } from '@sinclair/typebox';

export const DURATION_PATTERN = '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$';
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

/**
 * The keyword of a bound checked once the schema holds (config/load.ts): a duration or size is
 * more than 0 and at most `maxText` (`max` in ms or bytes), so a typo such as
 * `body_limit: 99999999999999GiB` is refused with the limit named instead of breaking at run time.
 */
export const BOUND = 'x-mailprobe-bound';
export interface Bound {
  kind: 'duration' | 'size';
  max: number;
  maxText: string;
}
export const bound = (kind: Bound['kind'], maxText: string): Record<typeof BOUND, Bound> => ({
  [BOUND]: { kind, maxText, max: kind === 'duration' ? parseDuration(maxText) : parseSize(maxText) },
});

/** A duration such as `15s`, decoded to milliseconds; at most `max` (default one day). */
export const Duration = (def: string, description: string, max = '1d') =>
  Type.Transform(
    Type.String({
      pattern: DURATION_PATTERN,
      default: def,
      description: `${description} Default ${def}, at most ${max}.`,
      errorMessage: 'must be a duration such as 15s, 5m or 1h',
      ...bound('duration', max),
    }),
  )
    .Decode(parseDuration)
    .Encode(formatDuration);

/** A size in bytes: a number or `64MiB`, `512KiB`, `1MB`; at most `max`. */
export const Size = (def: string, description: string, max: string) =>
  Type.Transform(
    Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^\\d+(\\.\\d+)?\\s*([kKmMgG]i?[bB]|[bB])?$' })], {
      default: def,
      description: `${description} Default ${def}, at most ${max}.`,
      errorMessage: 'must be a size such as 1048576, 512KiB or 64MiB',
      ...bound('size', max),
    }),
  )
    .Decode(parseSize)
    .Encode((n: number) => n);

export const Ip = (description: string) => Type.String({ format: 'ip', description, errorMessage: 'must be an IPv4 or IPv6 address' });
export const Hostname = (description: string) =>
  Type.String({ format: 'mailprobe-hostname', description, errorMessage: 'must be a host name such as mail.company.com' });
/** A listen address `host:port` or `[v6]:port` (config/specs.ts). */
export const ListenAddress = (description: string, def?: string) =>
  Type.String({
    format: 'mailprobe-listen',
    description: def === undefined ? description : `${description} Default ${def}.`,
    errorMessage: 'must be host:port, such as 0.0.0.0:9464 or [::1]:9464',
    ...(def === undefined ? {} : { default: def }),
  });
export const Listen = (def: string, description: string) => ListenAddress(description, def);
/** An http:// or https:// URL (config/specs.ts). */
export const Url = (description: string) => Type.String({ format: 'mailprobe-url', description, errorMessage: 'must be an http:// or https:// URL' });
/** A closed section of the plan; with `withDefault` it may be left out (`{}`, its fields' defaults). */
export const obj = <T extends Record<string, TSchema>>(props: T, description: string, withDefault = true) =>
  Type.Object(props, { additionalProperties: false, description, ...(withDefault ? { default: {} } : {}) });
