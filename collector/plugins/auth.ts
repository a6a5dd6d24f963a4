/**
 * Bearer-token authentication. Tokens are stored as `sha256:<hex>` (with the probe's region when
 * the plan binds it); the presented token is hashed and its digest looked up among the stored
 * ones. Only digests are ever compared, so timing can tell at most something about the digest of
 * what was presented, from which no token can be recovered; and the cost of a push does not grow
 * with the number of probes (comparing with every stored digest did: 10 000 comparisons a push
 * at 10 000 probes). Runs before the body is read.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { CollectorError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The probe id the bearer token belongs to. */
    probeId?: string;
    /** The region collector.tokens binds that probe to (undefined: the older entry without one). */
    probeRegion?: string;
  }
}

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** A collector.tokens entry: `sha256:<hex>`, or `{ region, hash }` binding the probe's region. */
export type TokenEntry = string | { readonly region: string; readonly hash: string };

export interface AuthOptions {
  /** probe id → its token entry */
  tokens: Readonly<Record<string, TokenEntry>>;
}

export interface ProbeIdentity {
  id: string;
  region: string | undefined;
}

export function tokenLookup(tokens: Readonly<Record<string, TokenEntry>>): (token: string) => ProbeIdentity | undefined {
  const byDigest = new Map<string, ProbeIdentity>();
  for (const [id, e] of Object.entries(tokens)) {
    const hash = typeof e === 'string' ? e : e.hash;
    const digest = hash.slice('sha256:'.length).toLowerCase();
    // Two probes given the same token: the first one's, as before.
    if (!byDigest.has(digest)) byDigest.set(digest, { id, region: typeof e === 'string' ? undefined : e.region });
  }
  return (token) => byDigest.get(createHash('sha256').update(token, 'utf8').digest('hex'));
}

const auth: FastifyPluginAsync<AuthOptions> = async (app, opts) => {
  const lookup = tokenLookup(opts.tokens);
  app.decorateRequest('probeId', undefined);
  app.decorateRequest('probeRegion', undefined);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S{1,512})$/i.exec(header);
    const found = m?.[1] ? lookup(m[1]) : undefined;
    if (!found) throw new CollectorError('unauthorized', header ? 'the token is not known' : 'send Authorization: Bearer <token>');
    req.probeId = found.id;
    req.probeRegion = found.region;
  });
};

/** Not encapsulated: the hook applies to the routes of the plugin that registers it. */
export const authPlugin = fp(auth, { name: 'mailprobe-auth' });
