/**
 * The one retry schedule of the house: the probe's pusher and the collector's remote write both
 * wait this long before retrying a failed request, so a receiver that is down sees the same
 * doubling, capped, jittered load from every sender.
 */

/**
 * Delay before retry number `attempt` (1-based): doubling from `minMs` to `maxMs`, then 50–100 %
 * of that (jitter keeps many senders from retrying in step); never more than `maxMs`.
 */
export function backoff(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(base * (0.5 + random() * 0.5));
}
