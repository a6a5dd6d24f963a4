/**
 * Resolver specs as written in the plan (`probes.resolvers`, `probes.authoritative`):
 *
 * - `system`: the `nameserver` lines of /etc/resolv.conf, tried in order like the libc stub;
 * - `IP`, `IP:port`, `[v6]:port`: classic DNS (UDP, TCP on truncation);
 * - `tcp://host[:port]`: classic DNS over TCP only;
 * - `tls://host[:port]`: DNS over TLS (default port 853);
 * - `https://host[:port]/path` (or `http://` on loopback for the lab): DNS over HTTPS.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export type ResolverSpec =
  | { kind: 'dns'; label: string; servers: HostPort[] }
  | { kind: 'tcp'; label: string; server: HostPort }
  | { kind: 'dot'; label: string; server: HostPort; servername: string }
  | { kind: 'doh'; label: string; url: string };

export const RESOLV_CONF = '/etc/resolv.conf';

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address. */
export function parseHostPort(text: string, defaultPort: number): HostPort {
  const t = text.trim();
  const v6 = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t);
  if (v6) return { host: v6[1] ?? '', port: v6[2] ? port(v6[2], text) : defaultPort };
  if (isIP(t) === 6) return { host: t, port: defaultPort };
  const hp = /^([^:\s/]+)(?::(\d{1,5}))?$/.exec(t);
  if (!hp) throw new Error(`resolver "${text}": must be host, host:port or [v6]:port`);
  return { host: hp[1] ?? '', port: hp[2] ? port(hp[2], text) : defaultPort };
}

function port(p: string, text: string): number {
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`resolver "${text}": port must be 1-65535`);
  return n;
}

/** `host:port` with brackets around IPv6, as used in labels. */
export function formatHostPort(hp: HostPort, defaultPort = 53): string {
  const h = isIP(hp.host) === 6 ? `[${hp.host}]` : hp.host;
  return hp.port === defaultPort ? h : `${h}:${hp.port}`;
}

/** The nameservers of a resolv.conf text (IPv6 zone ids dropped: dgram cannot use them portably). */
export function parseResolvConf(text: string): HostPort[] {
  const out: HostPort[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m?.[1]) continue;
    const host = m[1].replace(/%.*$/, '');
    if (isIP(host)) out.push({ host, port: 53 });
  }
  return out;
}

/** Parses one spec; throws on a malformed spec (bad config). */
export function parseResolver(spec: string, opts: { resolvConf?: string } = {}): ResolverSpec {
  const s = spec.trim();
  if (s === 'system') {
    let text = '';
    try {
      text = readFileSync(opts.resolvConf ?? RESOLV_CONF, 'utf8');
    } catch {
      // No resolv.conf: glibc falls back to the local host.
      text = 'nameserver 127.0.0.1\n';
    }
    const servers = parseResolvConf(text);
    return { kind: 'dns', label: 'system', servers: servers.length > 0 ? servers : [{ host: '127.0.0.1', port: 53 }] };
  }
  if (s.startsWith('tcp://')) {
    const server = parseHostPort(s.slice('tcp://'.length).replace(/\/$/, ''), 53);
    if (isIP(server.host) === 0) throw new Error(`resolver "${spec}": tcp:// needs an IP address`);
    return { kind: 'tcp', label: s, server };
  }
  if (s.startsWith('tls://')) {
    const server = parseHostPort(s.slice('tls://'.length).replace(/\/$/, ''), 853);
    return { kind: 'dot', label: s, server, servername: server.host };
  }
  if (s.startsWith('https://') || s.startsWith('http://')) {
    const u = new URL(s);
    if (u.protocol === 'http:' && !isLoopback(u.hostname.replace(/^\[|\]$/g, ''))) {
      throw new Error(`resolver "${spec}": plain http:// DoH is only allowed on loopback (use https://)`);
    }
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/dns-query';
    return { kind: 'doh', label: s, url: u.toString() };
  }
  const hp = parseHostPort(s, 53);
  if (isIP(hp.host) === 0) throw new Error(`resolver "${spec}": must be system, an IP (with optional :port), tcp://IP, tls://host or https://host/path`);
  return { kind: 'dns', label: s, servers: [hp] };
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip === 'localhost' || /^127\./.test(ip);
}

/** Why a resolver spec is malformed, or null (syntax only: `system` is not read here). */
export function resolverProblem(spec: string): string | null {
  if (spec.trim() === 'system') return null;
  try {
    parseResolver(spec);
    return null;
  } catch (e) {
    return (e as Error).message.replace(/^resolver "[^"]*": /, '');
  }
}

/** Why an authoritative server (`host` or `host:port`) is malformed, or null. */
export function hostPortProblem(spec: string): string | null {
  try {
    parseHostPort(spec, 53);
    return null;
  } catch (e) {
    return (e as Error).message.replace(/^resolver "[^"]*": /, '');
  }
}
