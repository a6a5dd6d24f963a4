/**
 * Bearer-token authentication. Tokens are stored as `sha256:<hex>` (with the probe's region when
 * the plan binds it); the presented token is hashed and compared with every stored digest in
 * constant time, so neither the token nor which probe it belongs to leaks through timing. Runs
 * before the body is read.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
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
  const entries = Object.entries(tokens).map(([id, e]) => {
    const hash = typeof e === 'string' ? e : e.hash;
    return { id, region: typeof e === 'string' ? undefined : e.region, digest: Buffer.from(hash.slice('sha256:'.length), 'hex') };
  });
  return (token) => {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: ProbeIdentity | undefined;
    for (const e of entries) {
      // No early exit: every entry is compared.
      if (timingSafeEqual(presented, e.digest) && found === undefined) found = { id: e.id, region: e.region };
    }
    return found;
  };
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
