/**
 * The probe's small HTTP endpoint (node:http, GET only):
 *   /healthz   200 with a JSON summary while the probe runs and is healthy; 503 once it is
 *              stopping or while it is degraded, with the reasons (degradedReasons)
 *   /livez     200 while the process runs (503 once it is stopping): for liveness and readiness
 *              probes, which must not restart a probe or cut off its sink because a collector is down
 *   /metrics   the probe's own metrics (probe/self-metrics.ts) in the Prometheus text format
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SelfMetricsRegistry } from './self-metrics.js';
import { parseListen } from '../config/specs.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { createServer } = process.getBuiltinModule('node:http');

export interface HealthServer {
  /** `http://host:port` it listens on. */
  url: string;
  close(): Promise<void>;
}

export interface HealthReason {
  code: 'push_stalled' | 'spool_near_full' | 'checks_internal';
  message: string;
}

/** The spool counts as near its limit from this share of probes.push.spool_max_bytes. */
export const SPOOL_NEAR_FULL = 0.9;
/** Targets named in a checks_internal reason (the count is always complete). */
const NAMED_TARGETS = 5;

export interface HealthInput {
  /** How long batches have waited with no collector taking one (Pusher.stalledMs); undefined without collectors. */
  stalledMs: number | undefined;
  degradedAfterMs: number;
  spoolBytes: number;
  spoolMaxBytes: number;
  /** Targets whose latest result is an internal failure. */
  internal: readonly { type: string; target: string; code?: string | undefined; message?: string | undefined }[];
}

const secs = (ms: number): string => String(Math.round(ms / 100) / 10);

/** Why a running probe is degraded (empty: it is healthy). */
export function degradedReasons(h: HealthInput): HealthReason[] {
  const out: HealthReason[] = [];
  if (h.stalledMs !== undefined && h.stalledMs > h.degradedAfterMs) {
    out.push({
      code: 'push_stalled',
      message: `no collector has accepted a batch for ${secs(h.stalledMs)} s while batches wait (limit ${secs(h.degradedAfterMs)} s, probes.push.degraded_after)`,
    });
  }
  if (h.spoolBytes >= SPOOL_NEAR_FULL * h.spoolMaxBytes) {
    out.push({
      code: 'spool_near_full',
      message: `the spool holds ${h.spoolBytes} bytes, ${Math.round((100 * h.spoolBytes) / h.spoolMaxBytes)} % of probes.push.spool_max_bytes (${h.spoolMaxBytes}); at the limit the oldest batches are dropped`,
    });
  }
  if (h.internal.length > 0) {
    const named = h.internal.slice(0, NAMED_TARGETS).map((t) => `${t.type} ${t.target} (${t.code ?? 'internal'}: ${(t.message ?? '').slice(0, 200)})`);
    const more = h.internal.length > NAMED_TARGETS ? `, and ${h.internal.length - NAMED_TARGETS} more` : '';
    out.push({
      code: 'checks_internal',
      message: `${h.internal.length} target${h.internal.length === 1 ? ' fails' : 's fail'} internally (a bug or bad config): ${named.join('; ')}${more}`,
    });
  }
  return out;
}

export async function startHealthServer(
  listen: string,
  registry: Pick<SelfMetricsRegistry, 'metrics' | 'contentType'>,
  summary: () => { ok: boolean; state: string } & Record<string, unknown>,
): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const s = summary();
      const ok = path === '/livez' ? s.state === 'running' : s.ok;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(s));
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /livez or /metrics\n');
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
