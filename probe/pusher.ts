/**
 * The pusher: one loop per collector sends the spool's batches in order (oldest first, one at a
 * time, the same batch id on every retry) over node:http(s) (probe/http-client.ts), one
 * keep-alive connection per collector.
 *   2xx (accepted or duplicate)     done for that collector
 *   401, 403                        the token is not accepted: logged as an error, the batch
 *                                   stays and is retried at the longest delay (a fixed token
 *                                   then delivers everything)
 *   other 4xx except 408 and 429    that collector will never take it: dropped for it, counted
 *   5xx, 408, 429, network, timeout retried with exponential backoff and jitter, never sooner
 *                                   than a Retry-After the collector sent (429 when the probe
 *                                   pushes faster than collector.push_rate)
 * A collector that is down never holds back the others.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Log as Logger } from './log.js';
import { backoff } from '../protocol/backoff.js';
import { RESULTS_PATH, type ProbeInfo } from '../protocol/wire.js';
import { PROBE_ERRORS } from './errors.js';
import { keepAliveAgents, request, type HttpAgents } from './http-client.js';
import type { ProbeMetrics } from './self-metrics.js';
import type { Spool, SpooledBatch } from './spool.js';

export interface PusherOptions {
  spool: Spool;
  collectors: readonly string[];
  token: string;
  probe: { id: string; region: string; version: string };
  retryMinMs: number;
  retryMaxMs: number;
  requestTimeoutMs: number;
  /** The environment variable the token came from, named in the log when it is refused. */
  tokenEnv: string;
  log: Logger;
  metrics?: ProbeMetrics;
  random?: () => number;
}

export type PushOutcome = 'accepted' | 'duplicate' | 'rejected' | 'unauthorized' | 'error';

/** The envelope around a spooled batch, with the spool's state at send time. */
export function envelope(probe: ProbeInfo, b: SpooledBatch): string {
  return `{"probe":${JSON.stringify(probe)},"batch":${JSON.stringify({ id: b.id, seq: b.seq, createdAt: b.createdAt, stream: b.stream, firstResult: b.firstResult })},"results":${b.resultsJson}}`;
}

class Lane {
  failures = 0;
  authFailures = 0;
  /** Since when a batch waits for this collector without one being taken (undefined: nothing waits). */
  waitingSince: number | undefined;
  wake: (() => void) | undefined;
  sleeping: NodeJS.Timeout | undefined;
  busy = false;
  /** Retry-After of the last answer, in ms (0: none). */
  retryAfterMs = 0;
  constructor(readonly url: string) {}
}

export class Pusher {
  readonly #o: PusherOptions;
  readonly #agents: HttpAgents;
  readonly #lanes: Lane[];
  readonly #loops: Promise<void>[] = [];
  #stopped = false;
  readonly #abort = new AbortController();

  constructor(o: PusherOptions) {
    this.#o = o;
    // An idle connection is closed after 10 s (sooner when the collector's Keep-Alive header says so).
    this.#agents = keepAliveAgents(10_000);
    this.#lanes = o.collectors.map((c) => new Lane(c));
  }

  start(): void {
    for (const lane of this.#lanes) this.#loops.push(this.#loop(lane));
  }

  /** New batches are in the spool: wake idle loops (not those backing off). */
  notify(): void {
    for (const lane of this.#lanes) if (!lane.sleeping) lane.wake?.();
  }

  /**
   * How long batches have waited without any collector taking one: the smallest wait over the
   * collectors, a collector with nothing to send counting 0 (it has everything). Undefined
   * without collectors.
   */
  stalledMs(now = Date.now()): number | undefined {
    if (this.#lanes.length === 0) return undefined;
    return Math.min(...this.#lanes.map((l) => (l.waitingSince === undefined ? 0 : Math.max(0, now - l.waitingSince))));
  }

  /** True when every collector has taken (or rejected) every spooled batch. */
  idle(): boolean {
    return this.#lanes.every((l) => !l.busy && this.#o.spool.nextFor(l.url) === undefined);
  }

  /** Pushes what it can until the spool is empty for every collector or the time is up. Retries right away. */
  async drain(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (const lane of this.#lanes) {
      if (lane.sleeping) {
        clearTimeout(lane.sleeping);
        lane.sleeping = undefined;
      }
      lane.wake?.();
    }
    while (!this.idle() && Date.now() < until) await sleep(20);
    return this.idle();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    for (const lane of this.#lanes) {
      if (lane.sleeping) clearTimeout(lane.sleeping);
      lane.sleeping = undefined;
      lane.wake?.();
    }
    await Promise.allSettled(this.#loops);
    this.#agents.destroy();
  }

  async #loop(lane: Lane): Promise<void> {
    const { spool, log } = this.#o;
    while (!this.#stopped) {
      const batch = spool.nextFor(lane.url);
      if (!batch) {
        lane.waitingSince = undefined;
        await new Promise<void>((resolve) => (lane.wake = resolve));
        lane.wake = undefined;
        continue;
      }
      lane.busy = true;
      lane.waitingSince ??= Date.now();
      spool.pin(batch.id);
      const outcome = await this.#push(lane, batch);
      spool.unpin(batch.id);
      lane.busy = false;
      this.#o.metrics?.pushes.inc({ region: this.#o.probe.region, probe: this.#o.probe.id, collector: lane.url, result: outcome });
      if (outcome === 'accepted' || outcome === 'duplicate' || outcome === 'rejected') {
        try {
          spool.ack(batch.id, lane.url, outcome !== 'rejected');
        } catch (err) {
          // Not recorded: the batch is pushed again later and the collector answers "duplicate".
          log.error({ code: 'spool_write_failed', err, batch: batch.id }, PROBE_ERRORS.spool_write_failed.message);
          await this.#pause(lane, this.#o.retryMaxMs);
          continue;
        }
        // Taken: what waits now has waited from here.
        lane.waitingSince = Date.now();
        if (lane.failures > 0 || lane.authFailures > 0) log.info({ collector: lane.url, batch: batch.id }, 'collector takes batches again');
        lane.failures = 0;
        lane.authFailures = 0;
        continue;
      }
      if (this.#stopped) break;
      let delay: number;
      if (outcome === 'unauthorized') {
        lane.authFailures++;
        delay = backoff(lane.authFailures + 3, this.#o.retryMinMs, this.#o.retryMaxMs, this.#o.random);
      } else {
        lane.failures++;
        delay = backoff(lane.failures, this.#o.retryMinMs, this.#o.retryMaxMs, this.#o.random);
      }
      // The collector said when to come back: never sooner (bounded, so a bogus header cannot park the lane).
      delay = Math.max(delay, Math.min(lane.retryAfterMs, 10 * 60_000));
      await this.#pause(lane, delay);
    }
  }

  /** Sleeps before the next attempt; stop() and drain() cut it short. */
  async #pause(lane: Lane, ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      lane.wake = resolve;
      lane.sleeping = setTimeout(resolve, ms);
    });
    lane.sleeping = undefined;
    lane.wake = undefined;
  }

  async #push(lane: Lane, batch: SpooledBatch): Promise<PushOutcome> {
    const { log, probe, token } = this.#o;
    const info: ProbeInfo = { ...probe, spool: this.#o.spool.stats() };
    const url = `${lane.url.replace(/\/+$/, '')}${RESULTS_PATH}`;
    let status: number;
    let text: string;
    lane.retryAfterMs = 0;
    try {
      const timeout = AbortSignal.timeout(this.#o.requestTimeoutMs);
      const res = await request(url, {
        method: 'POST',
        agents: this.#agents,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: envelope(info, batch),
        signal: AbortSignal.any([this.#abort.signal, timeout]),
      }).catch((err: unknown) => {
        throw timeout.aborted ? new Error(`no reply within ${this.#o.requestTimeoutMs} ms (probes.push.request_timeout)`) : err;
      });
      status = res.status;
      lane.retryAfterMs = retryAfterMs(res.headers['retry-after']);
      text = res.body.toString('utf8');
    } catch (err) {
      const level = lane.failures === 0 ? 'warn' : 'debug';
      log[level](
        { code: 'push_failed', collector: lane.url, batch: batch.id, failures: lane.failures + 1, err: err instanceof Error ? err.message : String(err) },
        PROBE_ERRORS.push_failed.message,
      );
      return 'error';
    }
    if (status >= 200 && status < 300) {
      let reply: { status?: string } = {};
      try {
        reply = JSON.parse(text) as { status?: string };
      } catch {
        // A 2xx is the collector taking the batch, whatever the body says.
      }
      return reply.status === 'duplicate' ? 'duplicate' : 'accepted';
    }
    const detail = text.slice(0, 300);
    if (status === 401 || status === 403) {
      // Said once per streak and then every tenth time, so the log shows it without flooding.
      if (lane.authFailures % 10 === 0) {
        log.error(
          {
            code: 'push_unauthorized',
            collector: lane.url,
            status,
            reply: detail,
            tokenEnv: this.#o.tokenEnv,
            probe: probe.id,
            attempts: lane.authFailures + 1,
          },
          `collector ${lane.url} refused the token of probe ${probe.id} (HTTP ${status}): check ${this.#o.tokenEnv} and collector.tokens.${probe.id}; batches stay spooled`,
        );
      }
      return 'unauthorized';
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      log.error(
        { code: 'push_rejected', collector: lane.url, batch: batch.id, seq: batch.seq, results: batch.count, status, reply: detail },
        PROBE_ERRORS.push_rejected.message,
      );
      return 'rejected';
    }
    const level = lane.failures === 0 ? 'warn' : 'debug';
    log[level](
      { code: 'push_failed', collector: lane.url, batch: batch.id, status, failures: lane.failures + 1, reply: detail },
      PROBE_ERRORS.push_failed.message,
    );
    return 'error';
  }
}

/** Retry-After as seconds or an HTTP date → ms from now (0 when absent or unreadable). */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return 0;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : 0;
}
