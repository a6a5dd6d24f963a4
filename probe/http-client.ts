/**
 * The probe's HTTP client (pushes, DoH) on node:http and node:https, whose parser is the llhttp
 * built into Node. undici, the other choice, runs its parser as WebAssembly: loading undici and
 * compiling that module cost a probe ~15 MB of resident memory (`npm run bench:footprint`) for
 * two kinds of request.
 *
 * One request, one reply read whole (up to a byte limit): the status, the headers and the body.
 * The caller bounds it with an AbortSignal (the runtime owns timeouts), which also aborts a
 * request that is still connecting or sending.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { Agent: HttpAgent, request: httpRequest } = process.getBuiltinModule('node:http');
const { Agent: HttpsAgent, request: httpsRequest } = process.getBuiltinModule('node:https');

export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Keep-alive agents to reuse connections (default: Node's global agents). */
  agents?: HttpAgents;
  /** A longer reply body is an error (default 1 MiB). */
  maxBytes?: number;
}

export interface HttpAgents {
  http: InstanceType<typeof HttpAgent>;
  https: InstanceType<typeof HttpsAgent>;
  /** Closes every connection they hold. */
  destroy(): void;
}

/** Agents that keep idle connections for `idleMs` (and never keep the process alive for them). */
export function keepAliveAgents(idleMs: number): HttpAgents {
  const o = { keepAlive: true, timeout: idleMs, maxSockets: 4 };
  const http = new HttpAgent(o);
  const https = new HttpsAgent(o);
  return {
    http,
    https,
    destroy() {
      http.destroy();
      https.destroy();
    },
  };
}

/** A reply body over its limit (the request is aborted). */
export class ReplyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the reply body is larger than ${maxBytes} bytes`);
  }
}

/** Sends one request and reads the whole reply. Rejects on network errors, on abort and on a body over maxBytes. */
export function request(url: string | URL, o: HttpRequestOptions = {}): Promise<HttpReply> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const https = u.protocol === 'https:';
  if (!https && u.protocol !== 'http:') return Promise.reject(new Error(`${u.href}: not an http:// or https:// URL`));
  const maxBytes = o.maxBytes ?? 1024 * 1024;
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? Buffer.from(o.body) : o.body;
  const headers: OutgoingHttpHeaders = { ...o.headers, ...(body ? { 'content-length': body.byteLength } : {}) };
  return new Promise<HttpReply>((resolve, reject) => {
    const options = {
      method: o.method ?? 'GET',
      headers,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.agents ? { agent: https ? o.agents.https : o.agents.http } : {}),
    };
    const req = (https ? httpsRequest : httpRequest)(u, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > maxBytes) {
          reject(new ReplyTooLargeError(maxBytes));
          // Without an error: once a reply has begun, the socket's error would have no listener.
          req.destroy();
          return;
        }
        chunks.push(d);
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      // A connection closed before the whole reply: 'error' (aborted, ECONNRESET).
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
