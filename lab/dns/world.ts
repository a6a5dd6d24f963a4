/**
 * The lab's DNS world: the authoritative server for the test zone and four caching resolvers
 * (honest, ignoring TTL, clamping TTL, serving stale), each on its own loopback port chosen at
 * run time, plus the MTA-STS policy served over HTTP on loopback. `close()` stops everything.
 */
import { createServer, type Server } from 'node:http';
import { startAuthoritative, type Authoritative, type AuthoritativeOptions } from './authoritative.js';
import { startCachingResolver, type CachingResolver } from './caching-resolver.js';

export interface DnsWorldOptions extends AuthoritativeOptions {
  /** Extra seconds the `ignore` resolver keeps answers. Default 6. */
  ignoreExtraSeconds?: number;
  /** Minimum TTL of the `clamp` resolver. Default 10. */
  clampMinTtl?: number;
  /** How long past expiry the `stale` resolver may serve. Default 30. */
  staleSeconds?: number;
  /** The MTA-STS policy body; default lists the mail host (mode enforce). Served only with mtaStsId. */
  mtaStsPolicy?: string;
}

/** The role of each lab resolver, as its name on panels, in alerts and in the lab view. */
export const LAB_RESOLVER_NAMES = { honest: 'honest', ignore: 'ignores TTL', clamp: 'clamps TTL', stale: 'serve-stale' } as const;
export type LabResolverRole = keyof typeof LAB_RESOLVER_NAMES;

/** A lab resolver as a named `probes.resolvers` entry. */
export function namedLabResolver(w: Pick<DnsWorld, 'resolvers'>, role: LabResolverRole): { address: string; name: string } {
  return { address: w.resolvers[role].address, name: LAB_RESOLVER_NAMES[role] };
}

export interface DnsWorld {
  auth: Authoritative;
  resolvers: { honest: CachingResolver; ignore: CachingResolver; clamp: CachingResolver; stale: CachingResolver };
  /** Base URL of the MTA-STS policy server; the policy is at `<base>/.well-known/mta-sts.txt`. */
  mtaStsUrl: string;
  /** Serves another MTA-STS policy body from now on (a drill); `null` restores the one of the options. */
  setMtaStsPolicy(body: string | null): void;
  /** The DKIM key pair the zone publishes (for MTAs that sign). */
  dkimKey: { privateKey: string; publicKey: string };
  close(): Promise<void>;
}

export async function startDnsWorld(opts: DnsWorldOptions = {}): Promise<DnsWorld> {
  const host = opts.host ?? '127.0.0.1';
  const auth = await startAuthoritative({ ...opts, nsIp: opts.nsIp ?? host });
  const started: { close(): Promise<void> }[] = [auth];
  try {
    const upstream = { host: auth.host, port: auth.port };
    const mk = async (mode: Parameters<typeof startCachingResolver>[0]['mode']) => {
      const r = await startCachingResolver({ upstream, mode, host, now: opts.now });
      started.push(r);
      return r;
    };
    const resolvers = {
      honest: await mk({ kind: 'honest' }),
      ignore: await mk({ kind: 'ignore', extraSeconds: opts.ignoreExtraSeconds ?? 6 }),
      clamp: await mk({ kind: 'clamp', minTtl: opts.clampMinTtl ?? 10 }),
      stale: await mk({ kind: 'stale', staleSeconds: opts.staleSeconds ?? 30 }),
    };
    const defaultPolicy = opts.mtaStsPolicy ?? `version: STSv1\r\nmode: enforce\r\nmx: ${auth.zone.mailHost}\r\nmax_age: 86400\r\n`;
    let policy = defaultPolicy;
    const http: Server = createServer((req, res) => {
      if (req.url === '/.well-known/mta-sts.txt' && auth.zone.mtaStsId) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(policy);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => http.listen(0, host, r));
    started.push({ close: () => new Promise<void>((r) => http.close(() => r())) });
    const port = (http.address() as { port: number }).port;
    return {
      auth,
      resolvers,
      mtaStsUrl: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      setMtaStsPolicy(body) {
        policy = body ?? defaultPolicy;
      },
      dkimKey: auth.zone.dkimKey,
      close: async () => {
        http.closeAllConnections();
        await Promise.all(started.map((s) => s.close()));
      },
    };
  } catch (e) {
    await Promise.all(started.map((s) => s.close()));
    throw e;
  }
}
