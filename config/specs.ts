/**
 * One grammar for every server spec of the plan, so the plan is parsed once, at validation, and a
 * bad spec is reported with its real reason (`port 530000 is out of range 1–65535`) instead of
 * a guess, or a silent failure at run time. The probe, the collector and the sink use the parsed
 * forms (or these functions for command-line overrides); nothing else parses host:port.
 *
 * - resolvers: `system`, `IP`, `IP:port`, `[v6]:port`, `tcp://IP[:port]`, `tls://host[:port]`,
 *   `https://host[:port]/path` (`http://` on loopback only, for the lab);
 * - authoritative servers: `host`, `host:port`, `IPv6`, `[v6]:port`;
 * - listen addresses: `host:port`, `[v6]:port` (port 0 picks a free port);
 * - DNS servers: `IP`, `IP:port`, `[v6]:port`;
 * - URLs (collectors, sink, remote write): `http(s)://host[:port][/path]`;
 * - host names (mail host, domains, zones): names, never IP literals.
 *
 * Every parser throws {@link SpecError} whose message is the rule broken, without the path (the
 * caller knows the path). Imports only node built-ins: config/ sits on protocol/ alone.
 */
import { withoutRootDot } from '../protocol/dns-name.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { isIP } = process.getBuiltinModule('node:net');

export class SpecError extends Error {
  override name = 'SpecError';
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** What every parsed server spec carries for dashboards: `label` (the spec as written, the series label) and an optional display `name`. */
interface Named {
  /** The spec as written (trimmed): the `resolver` label of results. */
  readonly label: string;
  /** A display name for dashboards, when the plan gives one. */
  readonly name?: string;
}

/** A parsed resolver. `system` stays symbolic: /etc/resolv.conf is read where the client is made. */
export type ResolverSpec = Named &
  (
    | { readonly kind: 'system' }
    | { readonly kind: 'dns'; readonly servers: readonly HostPort[] }
    | { readonly kind: 'tcp'; readonly server: HostPort }
    | { readonly kind: 'dot'; readonly server: HostPort; readonly servername: string }
    | { readonly kind: 'doh'; readonly url: string }
  );

/** A parsed authoritative server: an IP (asked at once) or a name (resolved at run time). */
export interface AuthoritativeSpec extends Named, HostPort {
  /** True when `host` is an IP literal. */
  readonly isIp: boolean;
}

const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;
/** Exported for the editor schema, which has no host-name format of this shape. */
export const HOSTNAME_PATTERN = HOSTNAME_RE.source;

/** Why `text` is not a host name (IP literals and all-numeric top labels are not), or null. */
export function hostnameProblem(text: string): string | null {
  if (isIP(text.replace(/^\[|\]$/g, '')) !== 0) return `${text} is an IP address; this field takes a host name such as mail.company.com`;
  if (!HOSTNAME_RE.test(text)) return 'must be a host name such as mail.company.com';
  const top = withoutRootDot(text).split('.').at(-1) ?? '';
  if (/^\d+$/.test(top)) return `"${text}" ends in a number, so it is no host name (an IP address?); use a name such as mail.company.com`;
  return null;
}

function portOf(text: string, min = 1): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > 65535) throw new SpecError(`port ${text} is out of range ${min}–65535`);
  return n;
}

/**
 * `host`, `host:port`, `IPv6`, `[v6]`, `[v6]:port`. The host must be an IP or a host name;
 * `ip#port` (the dig/unbound notation) is refused with the spelling to use.
 */
export function parseHostPort(text: string, defaultPort: number, opts: { minPort?: number; requirePort?: boolean } = {}): HostPort {
  const t = text.trim();
  const form = opts.requirePort ? 'host:port (or [v6]:port)' : 'host or host:port';
  const hash = /^([^#\s]+)#(\d+)$/.exec(t);
  if (hash) throw new SpecError(`"${t}" is not ${form} (use ${isIP(hash[1] ?? '') === 6 ? `[${hash[1]}]` : hash[1]}:${hash[2]})`);
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (v6) {
    if (isIP(v6[1] ?? '') !== 6) throw new SpecError(`"${t}": [${v6[1]}] is not an IPv6 address`);
    if (!v6[2] && opts.requirePort) throw new SpecError(`"${t}" is not ${form}: the port is missing`);
    return { host: v6[1] ?? '', port: v6[2] ? portOf(v6[2], opts.minPort) : defaultPort };
  }
  if (isIP(t) === 6) {
    if (opts.requirePort) throw new SpecError(`"${t}" is not ${form}: write an IPv6 address with a port as [${t}]:port`);
    return { host: t, port: defaultPort };
  }
  const hp = /^([^:\s/#[\]]+)(?::(\d+))?$/.exec(t);
  if (!hp) throw new SpecError(`"${t}" is not ${form}`);
  const host = hp[1] ?? '';
  if (isIP(host) === 0 && !HOSTNAME_RE.test(host)) throw new SpecError(`"${t}": "${host}" is neither an IP address nor a host name`);
  if (!hp[2] && opts.requirePort) throw new SpecError(`"${t}" is not ${form}: the port is missing`);
  return { host, port: hp[2] ? portOf(hp[2], opts.minPort) : defaultPort };
}

/** `host:port` with brackets around IPv6; the port is left out when it is the default. */
export function formatHostPort(hp: HostPort, defaultPort = 53): string {
  const h = isIP(hp.host) === 6 ? `[${hp.host}]` : hp.host;
  return hp.port === defaultPort ? h : `${h}:${hp.port}`;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === '::1' || h === 'localhost' || /^127\./.test(h);
}

/** One resolver of `probes.resolvers` or `probes.dns.lookup_resolver`. */
export function parseResolverSpec(text: string, name?: string): ResolverSpec {
  const s = text.trim();
  const named = name === undefined ? {} : { name };
  if (s === 'system') return { kind: 'system', label: 'system', ...named };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1]?.toLowerCase();
  if (scheme === 'tcp') {
    const server = parseHostPort(s.slice('tcp://'.length).replace(/\/$/, ''), 53);
    if (isIP(server.host) === 0) throw new SpecError(`"${s}": tcp:// needs an IP address, not the name ${server.host}`);
    return { kind: 'tcp', label: s, server, ...named };
  }
  if (scheme === 'tls') {
    const server = parseHostPort(s.slice('tls://'.length).replace(/\/$/, ''), 853);
    return { kind: 'dot', label: s, server, servername: server.host, ...named };
  }
  if (scheme === 'https' || scheme === 'http') {
    const u = parseHttpUrl(s);
    if (u.protocol === 'http:' && !isLoopback(u.hostname)) throw new SpecError(`"${s}": plain http:// DoH is only allowed on loopback (use https://)`);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/dns-query';
    return { kind: 'doh', label: s, url: u.toString(), ...named };
  }
  if (scheme) throw new SpecError(`"${s}": unknown scheme ${scheme}:// (use IP[:port], tcp://, tls:// or https://)`);
  const hp = parseHostPort(s, 53);
  if (isIP(hp.host) === 0)
    throw new SpecError(`"${s}" must be system, an IP (with optional :port), tcp://IP, tls://host or https://host/path (a name needs tls:// or https://)`);
  return { kind: 'dns', label: s, servers: [hp], ...named };
}

/** One server of `probes.authoritative`: `host`, `host:port`, IPv6 forms. */
export function parseAuthoritative(text: string, name?: string): AuthoritativeSpec {
  const s = text.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new SpecError(`"${s}" is not host or host:port (authoritative servers are asked over classic DNS)`);
  const hp = parseHostPort(s, 53);
  const ip = isIP(hp.host) !== 0;
  return { host: hp.host, port: hp.port, isIp: ip, label: ip ? formatHostPort(hp) : s, ...(name === undefined ? {} : { name }) };
}

/** A listen address: `host:port` or `[v6]:port`; port 0 picks a free one. */
export function parseListen(text: string): HostPort {
  return parseHostPort(text, 0, { requirePort: true, minPort: 0 });
}

/** A classic DNS server: `IP`, `IP:port`, `[v6]:port`. */
export function parseDnsServer(text: string): HostPort {
  const hp = parseHostPort(text, 53);
  if (isIP(hp.host) === 0) throw new SpecError(`"${text.trim()}" must be an IP address (with optional :port), not a name`);
  return hp;
}

/** An `http://` or `https://` URL with a host and a port in range. */
export function parseHttpUrl(text: string): URL {
  const s = text.trim();
  if (!/^https?:\/\//i.test(s)) throw new SpecError(`"${s}" must be an http:// or https:// URL`);
  const port = /^https?:\/\/(?:\[[^\]]*\]|[^/:?#]*):(\d*)(?:[/?#]|$)/i.exec(s)?.[1];
  if (port !== undefined) portOf(port);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new SpecError(`"${s}" is not a valid URL`);
  }
  if (!u.hostname) throw new SpecError(`"${s}" has no host`);
  return u;
}

/** The problem of `text` under `parse`, or null. */
export function specProblem(parse: (text: string) => unknown, text: string): string | null {
  try {
    parse(text);
    return null;
  } catch (e) {
    if (e instanceof SpecError) return e.message;
    throw e;
  }
}
