import type { FastifyPluginAsync } from 'fastify';

export interface HealthOptions {
  /** False while starting or draining. */
  ready: () => boolean;
}

/** `/healthz`: the process answers. `/readyz`: it takes pushes (not draining). */
export const healthPlugin: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (!opts.ready()) return reply.code(503).send({ status: 'not ready' });
    return { status: 'ready' };
  });
};
