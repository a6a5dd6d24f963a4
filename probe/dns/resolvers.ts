/**
 * Turning a parsed resolver spec (config/specs.ts, the one grammar of the plan) into the servers
 * a client asks: `system` becomes the `nameserver` lines of /etc/resolv.conf, read when the
 * client is made and tried in order like the libc stub. No spec is parsed here.
 */
import { parseResolverSpec, type HostPort, type ResolverSpec } from '../../config/specs.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { readFileSync } = process.getBuiltinModule('node:fs');
const { isIP } = process.getBuiltinModule('node:net');

export { formatHostPort, isLoopback, type HostPort, type ResolverSpec } from '../../config/specs.js';

/** A resolver with its servers known: `system` expanded. */
export type ConcreteResolver = Exclude<ResolverSpec, { kind: 'system' }>;

export const RESOLV_CONF = '/etc/resolv.conf';

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

/** `system` → the servers of resolv.conf (127.0.0.1 without one, as glibc does); others unchanged. */
export function concreteResolver(spec: ResolverSpec, opts: { resolvConf?: string } = {}): ConcreteResolver {
  if (spec.kind !== 'system') return spec;
  let text = '';
  try {
    text = readFileSync(opts.resolvConf ?? RESOLV_CONF, 'utf8');
  } catch {
    // No resolv.conf: glibc falls back to the local host.
    text = 'nameserver 127.0.0.1\n';
  }
  const servers = parseResolvConf(text);
  return {
    kind: 'dns',
    label: spec.label,
    ...(spec.name === undefined ? {} : { name: spec.name }),
    servers: servers.length > 0 ? servers : [{ host: '127.0.0.1', port: 53 }],
  };
}

/** A spec as written (lab, tests, benches) → its concrete form, through the plan's grammar. */
export function parseResolver(text: string, opts: { resolvConf?: string } = {}): ConcreteResolver {
  return concreteResolver(parseResolverSpec(text), opts);
}
