/**
 * Per-key token buckets: `rate` requests per second with bursts up to `burst`. The collector
 * keys them by probe id (known probes only, so the map is bounded by collector.tokens); every
 * push counts, empty and duplicate ones too. Free of HTTP: a future series store can reuse it.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly now: () => number = Date.now,
  ) {}

  /** Takes one token: 0 when allowed, else the milliseconds until one is available. */
  take(key: string): number {
    const t = this.now();
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.rate) * 1000);
  }
}
