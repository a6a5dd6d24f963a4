/**
 * A sink on another host than the sending probe: the sink serves its arrivals over HTTP and the
 * probe asks for its message there (long poll). Send and arrival are then on two clocks, which
 * the results say (`sameClock: false`).
 *
 *   GET /v1/arrivals/<message id>?until=<Unix ms>   Authorization: Bearer <arrivalsToken(secret)>
 *   → 200 Arrival JSON | 404 {"arrived":false} when not arrived by `until` (or 25 s) | 401
 *
 * The token is derived from the round-trip HMAC secret, so nothing new needs distributing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import type { Arrival, Sink, SinkHandle } from './index.js';

/** Longest a single request waits (below common proxy idle timeouts). */
const LONG_POLL_MS = 25_000;

export function arrivalsToken(secret: string | Buffer): string {
  return createHmac('sha256', secret).update('mailprobe arrivals v1').digest('base64url');
}

export interface ArrivalsServer {
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function serveArrivals(sink: Pick<Sink, 'waitFor'>, o: { host: string; port: number; secret: string | Buffer }): Promise<ArrivalsServer> {
  const want = Buffer.from(`Bearer ${arrivalsToken(o.secret)}`);
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const got = Buffer.from(req.headers.authorization ?? '');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return send(401, { error: 'unauthorized' });
    const url = new URL(req.url ?? '/', 'http://sink');
    const m = /^\/v1\/arrivals\/([A-Za-z0-9._-]{1,128})$/.exec(url.pathname);
    if (req.method !== 'GET' || !m?.[1]) return send(404, { error: 'not found' });
    const until = Math.min(Number(url.searchParams.get('until')) || 0, Date.now() + LONG_POLL_MS);
    const ac = new AbortController();
    req.once('close', () => ac.abort());
    void sink.waitFor(m[1], until, ac.signal).then((a) => {
      if (res.destroyed) return;
      if (a) send(200, a);
      else send(404, { arrived: false });
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    host: o.host,
    port,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The probe's side: waits for arrivals at a sink on another host. */
export function remoteSink(url: string, secret: string | Buffer): SinkHandle {
  const auth = `Bearer ${arrivalsToken(secret)}`;
  const base = url.replace(/\/+$/, '');
  return {
    sameClock: false,
    now: () => Date.now(),
    async waitFor(messageId: string, untilMs: number, signal?: AbortSignal): Promise<Arrival | undefined> {
      while (Date.now() < untilMs && !signal?.aborted) {
        try {
          const r = await request(`${base}/v1/arrivals/${encodeURIComponent(messageId)}?until=${Math.ceil(untilMs)}`, {
            headers: { authorization: auth },
            signal,
            headersTimeout: LONG_POLL_MS + 10_000,
            bodyTimeout: LONG_POLL_MS + 10_000,
          });
          const body = (await r.body.json()) as Arrival | { arrived: false; error?: string };
          if (r.statusCode === 200) return body as Arrival;
          if (r.statusCode === 401) throw new Error(`the sink at ${base} refused the arrivals token (another secret?)`);
        } catch (e) {
          if (e instanceof Error && e.message.startsWith('the sink at')) throw e;
          if (signal?.aborted) break;
          // The sink is unreachable for now: retry until the deadline.
          await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, untilMs - Date.now()))));
        }
      }
      return undefined;
    },
  };
}
