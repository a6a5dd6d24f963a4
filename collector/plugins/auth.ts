/**
 * Bearer-token authentication. Tokens are stored as `sha256:<hex>`; the presented token is
 * hashed and compared with every stored digest in constant time, so neither the token nor which
 * probe it belongs to leaks through timing. Runs before the body is read.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { CollectorError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The probe id the bearer token belongs to. */
    probeId?: string;
  }
}

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

export interface AuthOptions {
  /** probe id → `sha256:<hex>` */
  tokens: Readonly<Record<string, string>>;
}

export function tokenLookup(tokens: Readonly<Record<string, string>>): (token: string) => string | undefined {
  const entries = Object.entries(tokens).map(([id, digest]) => [id, Buffer.from(digest.slice('sha256:'.length), 'hex')] as const);
  return (token) => {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: string | undefined;
    for (const [id, digest] of entries) {
      // No early exit: every entry is compared.
      if (timingSafeEqual(presented, digest) && found === undefined) found = id;
    }
    return found;
  };
}

const auth: FastifyPluginAsync<AuthOptions> = async (app, opts) => {
  const lookup = tokenLookup(opts.tokens);
  app.decorateRequest('probeId', undefined);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S{1,512})$/i.exec(header);
    const id = m?.[1] ? lookup(m[1]) : undefined;
    if (!id) throw new CollectorError('unauthorized', header ? 'the token is not known' : 'send Authorization: Bearer <token>');
    req.probeId = id;
  });
};

/** Not encapsulated: the hook applies to the routes of the plugin that registers it. */
export const authPlugin = fp(auth, { name: 'mailprobe-auth' });
