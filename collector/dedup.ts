/**
 * Remembers the last `capacity` batch keys so a retried batch is applied once.
 * A Map keeps insertion order, so the oldest key is the first one to evict.
 */
export class BatchDedup {
  readonly #seen = new Map<string, number>();
  constructor(readonly capacity: number) {}

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  add(key: string, results: number): void {
    this.#seen.set(key, results);
    while (this.#seen.size > this.capacity) {
      const oldest = this.#seen.keys().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest);
    }
  }

  get size(): number {
    return this.#seen.size;
  }
}
