/**
 * The on-disk spool: results are journaled as they are produced, sealed into batches, and kept
 * until every collector has taken each batch, so a collector outage or a probe crash loses
 * nothing and a restart replays the same batch ids in order.
 *
 * One append-only file `spool.log`, one record per line: `<crc32 hex> <json>\n`.
 *   h {nextSeq}                 header, written by compaction
 *   r {r}                       a result of the open (not yet sealed) batch
 *   b {id, seq, createdAt, n}   seals the first n open results into batch `id` (fsync'd before any push)
 *   a {id, c, ok}               collector `c` took the batch (ok) or rejected it for good
 *   d {id}                      the batch was dropped because the spool was full
 * Result records are written without fsync: they survive a killed process (the page cache
 * holds them); a seal is fsync'd so a batch that was pushed is on disk. Compaction rewrites the
 * live records to a new file and renames it over the old one. A torn last record (a crash in
 * the middle of a write) is skipped and cut off; a damaged record elsewhere is skipped.
 */
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import type { CheckResult } from '../protocol/results.js';
import { PROBE_ERRORS } from './errors.js';

export interface SpooledBatch {
  readonly id: string;
  readonly seq: number;
  readonly createdAt: number;
  /** The results as a JSON array, ready to put in the envelope. */
  readonly resultsJson: string;
  readonly count: number;
  /** Bytes its records take in the spool. */
  readonly bytes: number;
  /** collector → accepted (true) or rejected for good (false). */
  readonly done: Map<string, boolean>;
}

export interface SpoolStats {
  bytes: number;
  batches: number;
  dropped: number;
}

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  /** The collectors a batch must reach before it leaves the spool. */
  collectors: readonly string[];
  log: Logger;
  /** Called with the number of batches dropped for space. */
  onDrop?: (n: number) => void;
}

type Rec =
  | { t: 'h'; nextSeq: number }
  | { t: 'r'; r: CheckResult }
  | { t: 'b'; id: string; seq: number; createdAt: number; n: number }
  | { t: 'a'; id: string; c: string; ok: boolean }
  | { t: 'd'; id: string };

const FILE = 'spool.log';
const LOCK = 'lock';

function line(rec: Rec): string {
  return lineOfJson(JSON.stringify(rec));
}

function lineOfJson(json: string): string {
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function parseLine(text: string): Rec | undefined {
  const sp = text.indexOf(' ');
  if (sp !== 8) return undefined;
  const json = text.slice(9);
  if (Number.parseInt(text.slice(0, 8), 16) !== crc32(json)) return undefined;
  try {
    const rec = JSON.parse(json) as Rec;
    return typeof rec === 'object' && rec !== null && typeof rec.t === 'string' ? rec : undefined;
  } catch {
    return undefined;
  }
}

export class Spool {
  readonly dir: string;
  readonly path: string;
  readonly #opts: SpoolOptions;
  #fd: number;
  #fileBytes = 0;
  /** Sealed batches not yet done, oldest first (a Map keeps insertion order). */
  readonly #batches = new Map<string, SpooledBatch>();
  #liveBytes = 0;
  #open: { json: string; bytes: number }[] = [];
  #openBytes = 0;
  #nextSeq = 0;
  #dropped = 0;
  #closed = false;
  /** Batch id → pushes in flight. */
  readonly #pinned = new Map<string, number>();

  private constructor(opts: SpoolOptions, fd: number) {
    this.#opts = opts;
    this.dir = opts.dir;
    this.path = join(opts.dir, FILE);
    this.#fd = fd;
  }

  /** Opens (or creates) the spool and loads what an earlier run left. Never fails on a damaged file. */
  static open(opts: SpoolOptions): Spool {
    mkdirSync(opts.dir, { recursive: true });
    lock(opts.dir, opts.log);
    try {
      const path = join(opts.dir, FILE);
      const fd = openSync(path, 'a+');
      const spool = new Spool(opts, fd);
      spool.#load(readFileSync(path));
      // Start from a clean file: the torn tail and finished batches are gone after this.
      spool.#compact();
      return spool;
    } catch (err) {
      unlock(opts.dir);
      throw err;
    }
  }

  #load(buf: Buffer): void {
    const log = this.#opts.log;
    let pos = 0;
    let lineNo = 0;
    let bad = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      lineNo++;
      if (nl < 0) {
        log.warn({ code: 'spool_torn_record', file: this.path, offset: pos, bytes: buf.length - pos }, PROBE_ERRORS.spool_torn_record.message);
        break;
      }
      const text = buf.toString('utf8', pos, nl);
      const bytes = nl + 1 - pos;
      pos = nl + 1;
      const rec = parseLine(text);
      if (!rec) {
        bad++;
        log.warn({ code: 'spool_bad_record', file: this.path, line: lineNo }, PROBE_ERRORS.spool_bad_record.message);
        continue;
      }
      this.#replay(rec, bytes);
    }
    if (this.#batches.size > 0 || this.#open.length > 0 || bad > 0) {
      log.info({ file: this.path, batches: this.#batches.size, openResults: this.#open.length, bytes: this.bytes, skipped: bad }, 'spool loaded');
    }
  }

  #replay(rec: Rec, bytes: number): void {
    switch (rec.t) {
      case 'h':
        this.#nextSeq = Math.max(this.#nextSeq, rec.nextSeq);
        break;
      case 'r': {
        const json = JSON.stringify(rec.r);
        this.#open.push({ json, bytes });
        this.#openBytes += bytes;
        break;
      }
      case 'b':
        this.#sealOpen(rec.id, rec.seq, rec.createdAt, bytes, typeof rec.n === 'number' ? rec.n : this.#open.length);
        break;
      case 'a': {
        const b = this.#batches.get(rec.id);
        if (b) {
          b.done.set(rec.c, rec.ok);
          this.#finishIfDone(b);
        }
        break;
      }
      case 'd': {
        const b = this.#batches.get(rec.id);
        if (b) this.#remove(b);
        break;
      }
    }
  }

  /** Moves the first n open results into a new batch. */
  #sealOpen(id: string, seq: number, createdAt: number, sealBytes: number, n: number): SpooledBatch {
    const taken = this.#open.splice(0, Math.max(0, n));
    let takenBytes = 0;
    for (const o of taken) takenBytes += o.bytes;
    this.#openBytes -= takenBytes;
    const batch: SpooledBatch = {
      id,
      seq,
      createdAt,
      resultsJson: `[${taken.map((o) => o.json).join(',')}]`,
      count: taken.length,
      bytes: takenBytes + sealBytes,
      done: new Map(),
    };
    this.#batches.set(id, batch);
    this.#liveBytes += batch.bytes;
    this.#nextSeq = Math.max(this.#nextSeq, seq + 1);
    return batch;
  }

  #remove(b: SpooledBatch): void {
    if (this.#batches.delete(b.id)) this.#liveBytes -= b.bytes;
  }

  #finishIfDone(b: SpooledBatch): boolean {
    if (this.#opts.collectors.length === 0) return false;
    if (!this.#opts.collectors.every((c) => b.done.has(c))) return false;
    this.#remove(b);
    return true;
  }

  #write(rec: Rec, sync: boolean): number {
    if (this.#closed) throw new Error('spool is closed');
    const buf = Buffer.from(line(rec), 'utf8');
    writeSync(this.#fd, buf);
    if (sync) fdatasyncSync(this.#fd);
    this.#fileBytes += buf.length;
    return buf.length;
  }

  /** Journals results into the open batch (no fsync: a killed process keeps them). */
  appendResults(results: readonly CheckResult[]): void {
    if (results.length === 0) return;
    const jsons = results.map((r) => JSON.stringify(r));
    // The same bytes JSON.stringify({ t: 'r', r }) gives, without serialising each result twice.
    const lines = jsons.map((json) => lineOfJson(`{"t":"r","r":${json}}`));
    const buf = Buffer.from(lines.join(''), 'utf8');
    writeSync(this.#fd, buf);
    this.#fileBytes += buf.length;
    for (let i = 0; i < results.length; i++) {
      const bytes = Buffer.byteLength(lines[i] ?? '');
      this.#open.push({ json: jsons[i] ?? 'null', bytes });
      this.#openBytes += bytes;
    }
  }

  get openCount(): number {
    return this.#open.length;
  }

  get openBytes(): number {
    return this.#openBytes;
  }

  /** The sequence number the next batch gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * Seals the oldest open results (at most `max`) into a batch (fsync'd), then drops the oldest
   * batches while the spool is over its limit (the newest batch is always kept). Returns
   * undefined with nothing open.
   */
  seal(id: string, createdAt: number, max = Number.POSITIVE_INFINITY): SpooledBatch | undefined {
    if (this.#open.length === 0) return undefined;
    const seq = this.#nextSeq;
    const n = Math.min(this.#open.length, max);
    const bytes = this.#write({ t: 'b', id, seq, createdAt, n }, true);
    const batch = this.#sealOpen(id, seq, createdAt, bytes, n);
    this.#enforceLimit(batch);
    this.#maybeCompact();
    return batch;
  }

  #enforceLimit(keep: SpooledBatch): void {
    let dropped = 0;
    for (const b of this.#batches.values()) {
      if (this.#liveBytes + this.#openBytes <= this.#opts.maxBytes) break;
      if (b === keep) break;
      // A batch on its way to a collector is not dropped under it (it may arrive).
      if (this.#pinned.has(b.id)) continue;
      this.#write({ t: 'd', id: b.id }, false);
      this.#remove(b);
      dropped++;
    }
    if (dropped > 0) {
      fdatasyncSync(this.#fd);
      this.#dropped += dropped;
      this.#opts.log.warn({ code: 'spool_full', dropped, droppedTotal: this.#dropped, maxBytes: this.#opts.maxBytes }, PROBE_ERRORS.spool_full.message);
      this.#opts.onDrop?.(dropped);
    }
  }

  /** Records that a collector took the batch (ok) or rejected it for good; removes it once every collector is done. */
  ack(id: string, collector: string, ok: boolean): void {
    const b = this.#batches.get(id);
    if (!b || b.done.has(collector)) return;
    this.#write({ t: 'a', id, c: collector, ok }, true);
    b.done.set(collector, ok);
    if (this.#finishIfDone(b)) this.#maybeCompact();
  }

  /** Marks a batch as being pushed, so a full spool does not drop it meanwhile. */
  pin(id: string): void {
    this.#pinned.set(id, (this.#pinned.get(id) ?? 0) + 1);
  }

  unpin(id: string): void {
    const n = (this.#pinned.get(id) ?? 0) - 1;
    if (n > 0) this.#pinned.set(id, n);
    else this.#pinned.delete(id);
  }

  /** The oldest batch this collector has not taken yet. */
  nextFor(collector: string): SpooledBatch | undefined {
    for (const b of this.#batches.values()) if (!b.done.has(collector)) return b;
    return undefined;
  }

  /** Batches still waiting for at least one collector, oldest first. */
  batches(): SpooledBatch[] {
    return [...this.#batches.values()];
  }

  has(id: string): boolean {
    return this.#batches.has(id);
  }

  /** Live bytes: sealed batches not yet done plus the open results. */
  get bytes(): number {
    return this.#liveBytes + this.#openBytes;
  }

  get fileBytes(): number {
    return this.#fileBytes;
  }

  stats(): SpoolStats {
    return { bytes: this.bytes, batches: this.#batches.size, dropped: this.#dropped };
  }

  #maybeCompact(): void {
    if (this.#fileBytes - this.bytes > Math.max(1024 * 1024, this.bytes)) this.#compact();
  }

  /** Rewrites the live records to a new file and renames it over the old one. */
  #compact(): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    let size = 0;
    const put = (rec: Rec) => {
      const buf = Buffer.from(line(rec), 'utf8');
      writeSync(fd, buf);
      size += buf.length;
      return buf.length;
    };
    const rlines = (json: string) => {
      const results = JSON.parse(json) as CheckResult[];
      let bytes = 0;
      for (const r of results) bytes += put({ t: 'r', r });
      return bytes;
    };
    put({ t: 'h', nextSeq: this.#nextSeq });
    const rebuilt: SpooledBatch[] = [];
    for (const b of this.#batches.values()) {
      let bytes = rlines(b.resultsJson);
      bytes += put({ t: 'b', id: b.id, seq: b.seq, createdAt: b.createdAt, n: b.count });
      for (const [c, ok] of b.done) put({ t: 'a', id: b.id, c, ok });
      rebuilt.push({ ...b, bytes });
    }
    let openBytes = 0;
    const open = this.#open.map((o) => {
      const bytes = rlines(`[${o.json}]`);
      openBytes += bytes;
      return { json: o.json, bytes };
    });
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    try {
      const dfd = openSync(this.dir, 'r');
      fsyncSync(dfd);
      closeSync(dfd);
    } catch {
      // Some file systems cannot fsync a directory; the rename is still atomic.
    }
    closeSync(this.#fd);
    this.#fd = openSync(this.path, 'a');
    this.#fileBytes = size;
    this.#batches.clear();
    this.#liveBytes = 0;
    for (const b of rebuilt) {
      this.#batches.set(b.id, b);
      this.#liveBytes += b.bytes;
    }
    this.#open = open;
    this.#openBytes = openBytes;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
    unlock(this.dir);
  }
}

/** Spool directories this process holds. */
const held = new Set<string>();

export class SpoolLockedError extends Error {
  readonly code = 'spool_locked';
}

/**
 * One probe per spool directory: a `lock` file with the holder's pid. A lock left by a process
 * that is gone (killed) is taken over; so is one with our own pid that this process does not
 * hold (a container restarted as the same pid).
 */
function lock(dir: string, log: Logger): void {
  const file = join(dir, LOCK);
  const key = resolve(dir);
  if (held.has(key)) throw new SpoolLockedError(`${PROBE_ERRORS.spool_locked.message}: ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      held.add(key);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let pid = Number.NaN;
    try {
      pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    } catch {
      // Gone in between: try again.
    }
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new SpoolLockedError(`${PROBE_ERRORS.spool_locked.message}: ${dir} is used by pid ${pid} (if that is not a probe, remove ${file})`);
    }
    log.info({ file, pid }, 'taking over the spool lock of a process that is gone');
    rmSync(file, { force: true });
  }
  throw new SpoolLockedError(`${PROBE_ERRORS.spool_locked.message}: ${dir}: could not take ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlock(dir: string): void {
  if (held.delete(resolve(dir))) rmSync(join(dir, LOCK), { force: true });
}
