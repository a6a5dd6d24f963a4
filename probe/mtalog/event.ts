/**
 * What a mail server log line says, whatever its grammar: an inbound SMTP session began, a
 * message from an SMTP client was accepted (queued), a line of the grammar that counts nothing,
 * or a line of no known grammar (counted, skipped: a log follower never stops on a line).
 */

export type MtaEvent =
  | {
      kind: 'session' | 'message';
      /** Unix ms of the line when it carries a full timestamp, else undefined (the reader's clock). */
      at: number | undefined;
      /** The SMTP client's address. */
      client: string;
      /** The server address the client connected to, when the line names it (Exim's I=, postscreen). */
      serverIp?: string;
      /** The service that logged it (Postfix's syslog_name, e.g. postfix-old), to map to a server IP. */
      service?: string;
    }
  | { kind: 'other' }
  | { kind: 'unknown' };

export interface LineParser {
  /** The grammar's name (`postfix`, `exim`). */
  readonly format: string;
  parse(line: string): MtaEvent;
}

export const OTHER: MtaEvent = { kind: 'other' };
export const UNKNOWN: MtaEvent = { kind: 'unknown' };

/** An address out of brackets: `[ipv6:2001:db8::1]` and `[2001:db8::1]` → `2001:db8::1`. */
export const bare = (ip: string): string => ip.replace(/^ipv6:/i, '');

/** Bounded insertion-ordered map: the oldest key goes when it is full (queue ids, postscreen clients). */
export class BoundedMap<K, V> {
  readonly #m = new Map<K, V>();
  constructor(readonly max: number) {}
  get size(): number {
    return this.#m.size;
  }
  set(k: K, v: V): void {
    this.#m.delete(k);
    this.#m.set(k, v);
    if (this.#m.size > this.max) this.#m.delete(this.#m.keys().next().value as K);
  }
  take(k: K): V | undefined {
    const v = this.#m.get(k);
    if (v !== undefined) this.#m.delete(k);
    return v;
  }
  get(k: K): V | undefined {
    return this.#m.get(k);
  }
}
