/**
 * A real collector on 127.0.0.1:<random port> for tests, with helpers to push and to read
 * its exposition.
 */
import { Registry } from 'prom-client';
import { request } from 'undici';
import { buildCollector, type Collector } from '../../collector/app.js';
import type { PlanConfig } from '../../config/schema.js';
import type { Batch } from '../../protocol/wire.js';
import { testPlan, tokenFor } from '../../bench/lib/plan.js';

export interface TestCollector extends Collector {
  url: string;
  plan: PlanConfig;
  push(batch: Batch | string, opts?: { token?: string | null; contentType?: string }): Promise<{ status: number; body: Record<string, unknown> }>;
  /** The text exposition (or OpenMetrics with `om`). */
  scrape(om?: boolean): Promise<string>;
  /** Value of one sample of the exposition, or undefined. */
  sample(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  close(): Promise<void>;
}

export async function startTestCollector(plan: PlanConfig = testPlan(), extra: { now?: () => number; sweepIntervalMs?: number } = {}): Promise<TestCollector> {
  const registry = new Registry();
  const c = await buildCollector({ plan, registry, logger: false, ...extra });
  await c.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = c.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('collector did not bind');
  const url = `http://127.0.0.1:${addr.port}`;
  const scrape = async (om = false) => {
    const r = await request(`${url}/metrics`, { headers: om ? { accept: 'application/openmetrics-text;version=1.0.0' } : {} });
    return r.body.text();
  };
  return {
    ...c,
    url,
    plan,
    async push(batch, opts = {}) {
      const token = opts.token === undefined ? tokenFor(typeof batch === 'string' ? 'p-eu' : batch.probe.id) : opts.token;
      const r = await request(`${url}/v1/results`, {
        method: 'POST',
        headers: { 'content-type': opts.contentType ?? 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
        body: typeof batch === 'string' ? batch : JSON.stringify(batch),
      });
      const text = await r.body.text();
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = { raw: text };
      }
      return { status: r.statusCode, body };
    },
    scrape,
    async sample(name, labels = {}) {
      const text = await scrape();
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
        if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return undefined;
    },
    close: () => c.app.close(),
  };
}
