/**
 * `GET /metrics`: Prometheus text format, or OpenMetrics when the scraper asks for it. The
 * collector's own metrics come from the injected prom-client registry (a few dozen series); the
 * result series are streamed from the series store (collector/store/series-store.ts) in bounded
 * slices, so a push waits for one slice at most, never for a whole scrape.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { Counter, Registry, type RegistryContentType } from 'prom-client';
import { CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, type SeriesStore } from '../store/series-store.js';

export interface MetricsOptions {
  registry: Registry;
  /** The result series; absent when they are not exposed (remote write with results_on_metrics: false). */
  store?: SeriesStore | undefined;
}

export function wantsOpenMetrics(accept: string | undefined): boolean {
  return /application\/openmetrics-text/i.test(accept ?? '');
}

export const metricsPlugin: FastifyPluginAsync<MetricsOptions> = async (app, opts) => {
  const registry = opts.registry as unknown as Registry<RegistryContentType>;
  // The registry holds only the collector's own metrics (a few dozen series): rendered whole,
  // one scrape at a time, since OpenMetrics is rendered by switching the registry's content type.
  let queue: Promise<unknown> = Promise.resolve();
  const renderOwn = (om: boolean): Promise<string> => {
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
        }
      } finally {
        if (om) registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
      }
      return om ? `${parts.join('\n')}\n` : `${parts.join('\n\n')}\n`;
    };
    const p = queue.then(run, run);
    queue = p.catch(() => undefined);
    return p;
  };
  async function* exposition(om: boolean, own: string): AsyncGenerator<string> {
    yield own;
    if (opts.store) {
      if (!om) yield '\n';
      yield* opts.store.stream(om);
    }
    if (om) yield '# EOF\n';
  }
  app.get('/metrics', async (req, reply) => {
    const om = wantsOpenMetrics(req.headers.accept);
    const own = await renderOwn(om);
    reply.header('content-type', om ? OPENMETRICS_CONTENT_TYPE : CLASSIC_CONTENT_TYPE);
    return reply.send(Readable.from(exposition(om, own), { objectMode: false }));
  });
};
