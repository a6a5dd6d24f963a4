/**
 * The report's only source: Prometheus's HTTP query API (`/api/v1/query`, `/api/v1/query_range`),
 * which Prometheus, Mimir, Thanos Query and VictoriaMetrics all answer, so a report can be made
 * from data that went through remote write as well as from a scraping Prometheus. Every failure
 * becomes a {@link ReportError} that says what to check.
 */
import { request } from 'undici';

export class ReportError extends Error {}

export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

export interface RangeSeries {
  metric: Record<string, string>;
  /** [Unix seconds, value] */
  values: [number, number][];
}

type ApiReply<T> = { status: 'success'; data: T } | { status: 'error'; errorType: string; error: string };

export class PromClient {
  readonly #base: string;
  constructor(
    url: string,
    readonly opts: { headers?: Record<string, string>; timeoutMs?: number } = {},
  ) {
    this.#base = url.replace(/\/+$/, '');
  }

  async #get<T>(path: string, params: Record<string, string>): Promise<T> {
    const url = `${this.#base}${path}?${new URLSearchParams(params)}`;
    let status: number;
    let text: string;
    try {
      const r = await request(url, {
        headers: this.opts.headers ?? {},
        headersTimeout: this.opts.timeoutMs ?? 30_000,
        bodyTimeout: this.opts.timeoutMs ?? 30_000,
      });
      status = r.statusCode;
      text = await r.body.text();
    } catch (e) {
      throw new ReportError(`cannot reach Prometheus at ${this.#base}: ${(e as Error).message}`);
    }
    let body: ApiReply<T>;
    try {
      body = JSON.parse(text) as ApiReply<T>;
    } catch {
      throw new ReportError(
        `${this.#base}${path} answered ${status} with something other than the Prometheus API's JSON (is --prometheus the server's base URL?): ${text.slice(0, 200)}`,
      );
    }
    if (body.status !== 'success') throw new ReportError(`Prometheus refused ${params.query ?? path}: ${body.errorType}: ${body.error}`);
    return body.data;
  }

  /** An instant vector at `time` (Unix seconds). */
  async instant(query: string, time: number): Promise<InstantSample[]> {
    const d = await this.#get<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>('/api/v1/query', {
      query,
      time: String(time),
    });
    if (d.resultType !== 'vector') throw new ReportError(`expected a vector from ${query}, got a ${d.resultType}`);
    return d.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** A matrix from `start` to `end` (Unix seconds) every `step` seconds. */
  async range(query: string, start: number, end: number, step: number): Promise<RangeSeries[]> {
    const d = await this.#get<{ resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] }>('/api/v1/query_range', {
      query,
      start: String(start),
      end: String(end),
      step: String(step),
    });
    if (d.resultType !== 'matrix') throw new ReportError(`expected a matrix from ${query}, got a ${d.resultType}`);
    return d.result.map((r) => ({ metric: r.metric, values: r.values.map(([t, v]) => [t, Number(v)] as [number, number]) }));
  }
}
