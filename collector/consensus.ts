/**
 * Fleet-wide verdicts (a blocklist listing, FCrDNS, SPF, a certificate's expiry and validity, the
 * DKIM/DMARC/MTA-STS/TLSA records, the receiver's round-trip verdicts) are series without a probe
 * label: every probe reports them about the same server or record. So that no single probe can
 * flip one, the collector keeps each probe's last report and exports what the probes agree on:
 *   numbers: the median of the probes' values; with an even count and the two middle values
 *            apart, the value shown so far stays if it lies between them (else the lower one);
 *   labels (one-of gauges): the value more than half of the probes report; otherwise the one
 *            shown so far stays (the first report is shown while it is the only one).
 * With one probe that probe decides; with two, a verdict changes only when both agree; with
 * three or more, the majority decides. A probe that goes silent (swept) loses its vote.
 * Free of the collector's metric code, so a future series store can reuse it.
 */

interface Entry<T> {
  votes: Map<string, T>;
  shown: T | undefined;
}

export class Consensus<T extends number | string> {
  readonly #series = new Map<string, Entry<T>>();

  /** Records the probe's report for a series; returns the value the fleet agrees on. */
  vote(key: string, probe: string, value: T): T {
    let e = this.#series.get(key);
    if (!e) this.#series.set(key, (e = { votes: new Map(), shown: undefined }));
    // The same report again (the usual case: a verdict rarely changes between intervals) leaves
    // the votes as they were, and deciding again on the same votes gives what is shown (the
    // decision is idempotent): no need to look at every probe's vote again.
    if (e.shown !== undefined && e.votes.get(probe) === value) return e.shown;
    e.votes.set(probe, value);
    e.shown = decide(e);
    return e.shown;
  }

  /** The value currently agreed on, if any probe reported. */
  shown(key: string): T | undefined {
    return this.#series.get(key)?.shown;
  }

  /**
   * Drops a probe's votes; returns the series whose agreed value changed. A series nobody votes
   * on any more keeps the value last shown (as a series without a probe label did before).
   */
  forget(probe: string): { key: string; value: T }[] {
    const changed: { key: string; value: T }[] = [];
    for (const [key, e] of this.#series) {
      if (!e.votes.delete(probe) || e.votes.size === 0) continue;
      const before = e.shown;
      e.shown = decide(e);
      if (e.shown !== before) changed.push({ key, value: e.shown });
    }
    return changed;
  }
}

function decide<T extends number | string>(e: Entry<T>): T {
  const values = [...e.votes.values()];
  if (typeof values[0] === 'number') {
    const nums = (values as number[]).slice().sort((a, b) => a - b);
    const mid = nums.length >> 1;
    if (nums.length % 2 === 1) return nums[mid] as T;
    const lo = nums[mid - 1] ?? 0;
    const hi = nums[mid] ?? 0;
    if (lo === hi) return lo as T;
    const shown = e.shown as number | undefined;
    return (shown !== undefined && shown >= lo && shown <= hi ? shown : lo) as T;
  }
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  for (const [v, c] of counts) if (c * 2 > values.length) return v;
  return e.shown ?? (values[0] as T);
}
