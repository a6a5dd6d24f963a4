/**
 * `GET /` (the status page) and `GET /v1/status` (the same facts as JSON, see docs/status.md),
 * from the collector's own state. Protected by `collector.status.read_token` (Bearer header or
 * `?token=`) and/or `collector.status.basic_auth` when set; either admits. Rendering is cached
 * for a second, so a crowd refreshing the page costs one render a second and pushes are not
 * held behind it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { PlanConfig } from '../../config/schema.js';
import type { StatusModel, StatusV1 } from '../status/model.js';
import { renderStatusPage } from '../status/page.js';

export interface StatusOptions {
  model: StatusModel;
  settings: PlanConfig['collector']['status'];
  now?: () => number;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const hexOf = (d: string) => Buffer.from(d.slice('sha256:'.length), 'hex');
const same = (presented: string, stored: Buffer) => timingSafeEqual(digest(presented), stored);

/** Who may read: undefined when the page is open. */
function reader(settings: StatusOptions['settings']): ((req: FastifyRequest) => boolean) | undefined {
  const token = settings.read_token ? hexOf(settings.read_token) : undefined;
  const basic = settings.basic_auth ? { user: settings.basic_auth.user, password: hexOf(settings.basic_auth.password) } : undefined;
  if (!token && !basic) return undefined;
  return (req) => {
    const header = req.headers.authorization ?? '';
    if (token) {
      const bearer = /^Bearer\s+(\S{1,512})$/i.exec(header)?.[1];
      const query = (req.query as Record<string, unknown> | undefined)?.token;
      const presented = bearer ?? (typeof query === 'string' && query.length <= 512 ? query : undefined);
      if (presented !== undefined && same(presented, token)) return true;
    }
    if (basic) {
      const b64 = /^Basic\s+([A-Za-z0-9+/=]{1,1024})$/i.exec(header)?.[1];
      if (b64) {
        const text = Buffer.from(b64, 'base64').toString('utf8');
        const colon = text.indexOf(':');
        const userOk = colon > 0 && same(text.slice(0, colon), digest(basic.user));
        const passOk = colon > 0 && same(text.slice(colon + 1), basic.password);
        if (userOk && passOk) return true;
      }
    }
    return false;
  };
}

export const statusPlugin: FastifyPluginAsync<StatusOptions> = async (app, opts) => {
  const now = opts.now ?? Date.now;
  const allowed = reader(opts.settings);
  if (allowed) {
    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (allowed(req)) return;
      if (opts.settings.basic_auth) void reply.header('www-authenticate', 'Basic realm="mailprobe status", charset="UTF-8"');
      return reply
        .code(401)
        .send({ error: 'unauthorized', message: 'the status page needs the read token (Authorization: Bearer or ?token=) or the basic-auth user' });
    });
  }

  // One snapshot and one rendering a second at most, whatever the number of readers.
  let cached: { at: number; status: StatusV1; html?: string; json?: string } | undefined;
  const current = () => {
    const t = now();
    if (!cached || t - cached.at >= 1000) cached = { at: t, status: opts.model.snapshot() };
    return cached;
  };
  const refreshSeconds = opts.settings.refresh / 1000;

  app.get('/', async (_req, reply) => {
    const c = current();
    c.html ??= renderStatusPage(c.status, { refreshSeconds });
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header(
        'content-security-policy',
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      )
      .header('x-content-type-options', 'nosniff')
      .send(c.html);
  });
  app.get('/v1/status', async (_req, reply) => {
    const c = current();
    c.json ??= JSON.stringify(c.status);
    return reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(c.json);
  });
};
