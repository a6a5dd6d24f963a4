/**
 * `POST /v1/results`: validated against the wire schema (unknown fields rejected), bound to the
 * token's probe id, applied once per batch id.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Batch, RESULTS_PATH, type PushReply } from '../../protocol/wire.js';
import { CollectorError } from '../errors.js';
import type { Ingest } from '../ingest.js';
import { authPlugin } from './auth.js';

export interface ResultsOptions {
  tokens: Readonly<Record<string, string>>;
  ingest: Ingest;
}

export const resultsPlugin: FastifyPluginAsync<ResultsOptions> = async (app, opts) => {
  await app.register(authPlugin, { tokens: opts.tokens });
  app.post<{ Body: Batch; Reply: PushReply }>(RESULTS_PATH, { schema: { body: wireBodySchema() } }, async (req) => {
    const probeId = req.probeId ?? '';
    if (req.body.probe.id !== probeId) {
      throw new CollectorError('probe_mismatch', `the token is for probe ${probeId}, the batch says ${req.body.probe.id}`);
    }
    const reply = opts.ingest.apply(probeId, req.body);
    req.log.debug({ probe: probeId, batch: req.body.batch.id, status: reply.status, results: reply.results }, 'batch');
    return reply;
  });
};

/**
 * The batch schema for ajv, with the result union as a discriminated oneOf on `type`, so an
 * error names the field of the right result type instead of every branch of the union.
 */
function wireBodySchema(): object {
  const schema = structuredClone(Batch) as unknown as {
    properties: { results: { items: { anyOf?: unknown[]; oneOf?: unknown[]; discriminator?: unknown; type?: string; required?: string[] } } };
  };
  const items = schema.properties.results.items;
  items.oneOf = items.anyOf;
  delete items.anyOf;
  items.type = 'object';
  items.required = ['type'];
  items.discriminator = { propertyName: 'type' };
  return schema;
}
