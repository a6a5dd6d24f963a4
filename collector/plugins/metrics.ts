/**
 * `GET /metrics`: Prometheus text format, or OpenMetrics when the scraper asks for it.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Counter, Registry, type RegistryContentType } from 'prom-client';

export interface MetricsOptions {
  registry: Registry;
}

export function wantsOpenMetrics(accept: string | undefined): boolean {
  return /application\/openmetrics-text/i.test(accept ?? '');
}

export const metricsPlugin: FastifyPluginAsync<MetricsOptions> = async (app, opts) => {
  const registry = opts.registry as unknown as Registry<RegistryContentType>;
  const counterNames = () => registry.getMetricsAsArray().flatMap((m) => (m instanceof Counter ? [[m, (m as unknown as { name: string }).name] as const] : []));
  const names = new Map<object, string>();
  // prom-client renders OpenMetrics by switching the registry's content type and renames
  // counters (drops `_total`) in place while it does; scrapes are serialised and the names
  // restored so a text-format scrape never sees the renamed counters.
  let queue: Promise<unknown> = Promise.resolve();
  const render = (om: boolean): Promise<string> => {
    const run = async () => {
      if (!om) return registry.metrics();
      for (const [m, n] of counterNames()) names.set(m, n);
      registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      try {
        return await registry.metrics();
      } finally {
        registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
        for (const [m, n] of names) (m as { name: string }).name = n;
      }
    };
    const p = queue.then(run, run);
    queue = p.catch(() => undefined);
    return p;
  };
  app.get('/metrics', async (req, reply) => {
    const om = wantsOpenMetrics(req.headers.accept);
    const body = await render(om);
    reply.header('content-type', om ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE);
    return body;
  });
};
