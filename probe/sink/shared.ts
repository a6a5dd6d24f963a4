/**
 * The sink inside the probe process: started on first use by the roundtrip check from
 * `probes.roundtrip.sink` (one per listen address) so sender and sink share one clock.
 */
import { readFile } from 'node:fs/promises';
import type { Log as Logger } from '../log.js';
import type { PlanConfig } from '../../config/schema.js';
import { secretFromEnv } from '../smtp/signing.js';
import { serveArrivals, type ArrivalsServer } from './http.js';
import { dnsResolver, Sink } from './index.js';
import { parseListen } from '../../config/specs.js';

const sinks = new Map<string, Promise<Sink>>();
const apis = new Map<string, ArrivalsServer>();

/** The arrivals API of the shared sink for a listen address, if http_listen is set. */
export function sharedArrivals(listen: string): ArrivalsServer | undefined {
  return apis.get(listen);
}

/** The process's sink for the plan's round trip (started once). Throws without a roundtrip section. */
export function sharedSink(plan: PlanConfig, log?: Logger): Promise<Sink> {
  const rt = plan.probes.roundtrip;
  if (!rt) throw new Error('probes.roundtrip is not configured');
  let p = sinks.get(rt.sink.listen);
  if (!p) {
    p = (async () => {
      const { host, port } = parseListen(rt.sink.listen);
      const tls =
        rt.sink.tls_cert_file && rt.sink.tls_key_file ? { cert: await readFile(rt.sink.tls_cert_file), key: await readFile(rt.sink.tls_key_file) } : undefined;
      // Unref'd: a probe that stops exits without closing it (closeSharedSinks() for tests).
      const sink = await Sink.start({
        host,
        port,
        address: rt.to,
        secret: secretFromEnv(rt.secret_env),
        maxSize: rt.sink.max_size,
        name: rt.sink.name,
        tls,
        resolver: dnsResolver(rt.sink.resolver),
        log,
      });
      if (rt.sink.http_listen) {
        const h = parseListen(rt.sink.http_listen);
        const api = await serveArrivals(sink, { host: h.host, port: h.port, secret: secretFromEnv(rt.secret_env) });
        apis.set(rt.sink.listen, api);
      }
      return sink.unref();
    })();
    sinks.set(rt.sink.listen, p);
    p.catch(() => sinks.delete(rt.sink.listen));
  }
  return p;
}

/** Stops every shared sink (probe shutdown, tests). */
export async function closeSharedSinks(): Promise<void> {
  const all = [...sinks.values()];
  sinks.clear();
  const servers = [...apis.values()];
  apis.clear();
  await Promise.allSettled(servers.map((a) => a.close()));
  await Promise.allSettled(all.map(async (p) => (await p).close()));
}
