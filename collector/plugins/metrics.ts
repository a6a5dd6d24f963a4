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

/** Lets pushes waiting on the event loop run between two metrics of a long render. */
const yieldToPushes = () => new Promise<void>((resolve) => setImmediate(resolve));

export const metricsPlugin: FastifyPluginAsync<MetricsOptions> = async (app, opts) => {
  const registry = opts.registry as unknown as Registry<RegistryContentType>;
  // Rendered one metric at a time, yielding in between: a scrape of 100k series takes about a
  // second, and pushes should not wait that long. Scrapes are serialised, since OpenMetrics is
  // rendered by switching the registry's content type.
  let queue: Promise<unknown> = Promise.resolve();
  const render = (om: boolean): Promise<string> => {
    const run = async () => {
      const parts: string[] = [];
      if (om) registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      try {
        for (const m of registry.getMetricsAsArray()) {
          const metric = m as unknown as { name: string };
          const name = metric.name;
          // OpenMetrics names a counter family without `_total` (prom-client adds it to each sample).
          if (om && m instanceof Counter) metric.name = name.replace(/_total$/, '');
          try {
            parts.push(await registry.getSingleMetricAsString(name));
          } finally {
            metric.name = name;
          }
          await yieldToPushes();
        }
      } finally {
        if (om) registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
      }
      return om ? `${parts.join('\n')}\n# EOF\n` : `${parts.join('\n\n')}\n`;
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
