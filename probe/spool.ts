/**
 * The on-disk spool: results are journaled as they are produced, sealed into batches, and kept
 * until every collector has taken each batch, so a collector outage or a probe crash loses
 * nothing and a restart replays the same batch ids in order.
 *
 * One append-only file `spool.log`, one record per line: `<crc32 hex> <json>\n`.
 *   h {nextSeq, stream, nextResult}   header, written by compaction
 *   r {s, r}                          result number s of the open (not yet sealed) results
 *   b {id, seq, createdAt, n, f, st}  seals results f … f+n-1 of stream st into batch `id` (fsync'd before any push)
 *   a {id, c, ok}                     collector `c` took the batch (ok) or rejected it for good
 *   d {id}                            the batch was dropped because the spool was full
 * Every result gets a number within the spool's *stream* (a random id made with the spool) and
 * a batch names its first number, so the collector applies each result once whatever happens to
 * a record here: a damaged seal leaves its results open, they are sealed again under a new batch
 * id with the same numbers, and the collector answers "duplicate" for those it has.
 * Result records are written without fsync: they survive a killed process (the page cache
 * holds them); a seal is fsync'd so a batch that was pushed is on disk. Compaction rewrites the
 * live records to a new file and renames it over the old one. A torn last record (a crash in
 * the middle of a write) is skipped and cut off; a damaged record elsewhere is skipped.
 *
 * A full (or failing) disk never stops the probe: a write that fails is cut back off the file,
 * the spool goes on in memory (bounded by maxBytes, oldest batches dropped and counted), says so
 * in the log (`spool_disk_full`), and tries every few seconds to write everything live again
 * (an empty spool truncates its file, which frees room without needing any).
 */
import { dirname, join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Log as Logger } from './log.js';
import type { CheckResult } from '../protocol/results.js';
import { PROBE_ERRORS } from './errors.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { randomBytes } = process.getBuiltinModule('node:crypto');
const { closeSync, existsSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } =
  process.getBuiltinModule('node:fs');

export interface SpooledBatch {
  readonly id: string;
  readonly seq: number;
  readonly createdAt: number;
  /** The spool's stream id and the number of the first result (the others follow on). */
  readonly stream: string;
  readonly firstResult: number;
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
  | { t: 'h'; nextSeq: number; stream?: string; nextResult?: number }
  | { t: 'r'; s?: number; r: CheckResult }
  | { t: 'b'; id: string; seq: number; createdAt: number; n: number; f?: number; st?: string }
  | { t: 'a'; id: string; c: string; ok: boolean }
  | { t: 'd'; id: string };

const FILE = 'spool.log';
const LOCK = 'lock';
/** Errors that mean "no room or no writing here" (the spool goes on in memory). */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EIO']);
/** How often a spool without room tries to write everything again. */
const RETRY_DISK_MS = 2000;

interface OpenResult {
  json: string;
  bytes: number;
  /** Its number in the stream. */
  s: number;
}

export class SpoolOpenError extends Error {
  readonly code = 'spool_open_failed';
}

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
  #open: OpenResult[] = [];
  #openBytes = 0;
  #nextSeq = 0;
  #stream = '';
  #nextResult = 0;
  /** Since when writes fail for want of room (0: they do not). */
  #noRoomSince = 0;
  #lastDiskTry = 0;
  #dropped = 0;
  #closed = false;
  /** Batch id → pushes in flight. */
  readonly #pinned = new Map<string, number>();

  // biome-ignore lint/style/useConsistentMemberAccessibility: a private constructor (made by the static start/open) has no # form
  private constructor(opts: SpoolOptions, fd: number) {
    this.#opts = opts;
    this.dir = opts.dir;
    this.path = join(opts.dir, FILE);
    this.#fd = fd;
  }

  /** Opens (or creates) the spool and loads what an earlier run left. Never fails on a damaged file. */
  static open(opts: SpoolOptions): Spool {
    makeDir(opts.dir);
    lock(opts.dir, opts.log);
    try {
      const path = join(opts.dir, FILE);
      let fd: number;
      try {
        fd = openSync(path, 'a+');
      } catch (err) {
        throw new SpoolOpenError(`the spool file ${path} cannot be opened: ${describe(err)}`);
      }
      const spool = new Spool(opts, fd);
      spool.#load(readFileSync(path));
      if (!spool.#stream) spool.#stream = randomBytes(9).toString('base64url');
      // Batches of an older spool (no stream in its records) take the new one.
      for (const b of spool.#batches.values()) if (!b.stream) spool.#batches.set(b.id, { ...b, stream: spool.#stream });
      // Start from a clean file: the torn tail and finished batches are gone after this. With no
      // room for that, the file stays as it is and the spool goes on in memory.
      if (!spool.#tryCompact()) spool.#fileBytes = readFileSync(path).length;
      return spool;
    } catch (err) {
      unlock(opts.dir);
      throw err;
    }
  }

  /** The stream id results are numbered in. */
  get stream(): string {
    return this.#stream;
  }

  /** True while the spool's file system has no room (the spool runs in memory). */
  get diskFull(): boolean {
    return this.#noRoomSince > 0;
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
        if (typeof rec.stream === 'string' && !this.#stream) this.#stream = rec.stream;
        if (typeof rec.nextResult === 'number') this.#nextResult = Math.max(this.#nextResult, rec.nextResult);
        break;
      case 'r': {
        const json = JSON.stringify(rec.r);
        // Records of older spools carry no number: they get the next ones.
        const s = typeof rec.s === 'number' ? rec.s : this.#nextResult;
        this.#nextResult = Math.max(this.#nextResult, s + 1);
        this.#open.push({ json, bytes, s });
        this.#openBytes += bytes;
        break;
      }
      case 'b': {
        // The stream is in every seal too, so a damaged header does not lose it.
        if (typeof rec.st === 'string' && !this.#stream) this.#stream = rec.st;
        const n = typeof rec.n === 'number' ? rec.n : this.#open.length;
        if (typeof rec.f !== 'number') {
          this.#sealOpen(rec.id, rec.seq, rec.createdAt, bytes, 0, n);
          break;
        }
        // The seal names its results by number: results before them whose own seal was damaged
        // stay open (sealed again later, same numbers), a damaged result record is just missing.
        const f = rec.f;
        let at = 0;
        while (at < this.#open.length && (this.#open[at]?.s ?? 0) < f) at++;
        let end = at;
        while (end < this.#open.length && (this.#open[end]?.s ?? 0) < f + n) end++;
        this.#sealOpen(rec.id, rec.seq, rec.createdAt, bytes, at, end - at, f);
        break;
      }
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

  /** Moves n open results from index `at` into a new batch. */
  #sealOpen(id: string, seq: number, createdAt: number, sealBytes: number, at: number, n: number, first?: number): SpooledBatch {
    const taken = this.#open.splice(at, Math.max(0, n));
    let takenBytes = 0;
    for (const o of taken) takenBytes += o.bytes;
    this.#openBytes -= takenBytes;
    const batch: SpooledBatch = {
      id,
      seq,
      createdAt,
      stream: this.#stream,
      firstResult: taken[0]?.s ?? first ?? this.#nextResult,
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

  /** Writes a record; returns the bytes it takes (also when there is no room and it stays in memory). */
  #write(rec: Rec, sync: boolean): number {
    if (this.#closed) throw new Error('spool is closed');
    const buf = Buffer.from(line(rec), 'utf8');
    this.#put(buf, sync);
    return buf.length;
  }

  /** Appends to the file, or — without room — cuts a partial write back off and goes on in memory. */
  #put(buf: Buffer, sync: boolean): void {
    if (this.#noRoomSince > 0) {
      this.#retryDisk();
      return;
    }
    try {
      writeSync(this.#fd, buf);
      if (sync) fdatasyncSync(this.#fd);
      this.#fileBytes += buf.length;
    } catch (err) {
      if (!NO_ROOM.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      try {
        // A torn record in the middle would spoil the next one: cut it off (this needs no room).
        ftruncateSync(this.#fd, this.#fileBytes);
      } catch {
        // Nothing more to do: a torn record is skipped on load.
      }
      this.#noRoom(err);
    }
  }

  #noRoom(err: unknown): void {
    if (this.#noRoomSince > 0) return;
    this.#noRoomSince = Date.now();
    this.#lastDiskTry = this.#noRoomSince;
    this.#opts.log.error(
      { code: 'spool_disk_full', file: this.path, err: describe(err), maxBytes: this.#opts.maxBytes },
      `${PROBE_ERRORS.spool_disk_full.message}: ${describe(err)} (${this.path})`,
    );
  }

  /** Without room: every RETRY_DISK_MS, tries to write everything live again. */
  #retryDisk(): void {
    const now = Date.now();
    if (now - this.#lastDiskTry < RETRY_DISK_MS) return;
    this.#lastDiskTry = now;
    const since = this.#noRoomSince;
    this.#noRoomSince = 0;
    if (this.#tryCompact()) {
      this.#opts.log.info(
        { code: 'spool_disk_ok', file: this.path, afterMs: now - since, bytes: this.bytes },
        'the spool has room again: everything live is on disk',
      );
    } else {
      this.#noRoomSince = since;
    }
  }

  /** Journals results into the open batch (no fsync: a killed process keeps them). */
  appendResults(results: readonly CheckResult[]): void {
    if (results.length === 0) return;
    if (this.#closed) throw new Error('spool is closed');
    const first = this.#nextResult;
    const jsons = results.map((r) => JSON.stringify(r));
    // The same bytes JSON.stringify({ t: 'r', s, r }) gives, without serialising each result twice.
    const lines = jsons.map((json, i) => lineOfJson(`{"t":"r","s":${first + i},"r":${json}}`));
    this.#nextResult += results.length;
    for (let i = 0; i < results.length; i++) {
      const bytes = Buffer.byteLength(lines[i] ?? '');
      this.#open.push({ json: jsons[i] ?? 'null', bytes, s: first + i });
      this.#openBytes += bytes;
    }
    this.#put(Buffer.from(lines.join(''), 'utf8'), false);
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
    // A batch holds consecutive numbers only (a damaged record can leave a gap).
    const f = this.#open[0]?.s ?? 0;
    let n = 1;
    while (n < Math.min(this.#open.length, max) && this.#open[n]?.s === f + n) n++;
    const bytes = this.#write({ t: 'b', id, seq, createdAt, n, f, st: this.#stream }, true);
    const batch = this.#sealOpen(id, seq, createdAt, bytes, 0, n, f);
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
      if (this.#noRoomSince === 0) fdatasyncSync(this.#fd);
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
    if (this.#noRoomSince > 0) this.#retryDisk();
    else if (this.#fileBytes - this.bytes > Math.max(1024 * 1024, this.bytes)) this.#tryCompact();
  }

  /** Compacts; without room, removes what it began and goes on in memory (false). */
  #tryCompact(): boolean {
    try {
      this.#compact();
      return true;
    } catch (err) {
      if (!NO_ROOM.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      rmSync(`${this.path}.tmp`, { force: true });
      this.#noRoom(err);
      return false;
    }
  }

  /** Rewrites the live records to a new file and renames it over the old one. */
  #compact(): void {
    const header: Rec = { t: 'h', nextSeq: this.#nextSeq, stream: this.#stream, nextResult: this.#nextResult };
    if (this.#batches.size === 0 && this.#open.length === 0) {
      // Nothing live: cut the file in place, which frees room without needing any.
      ftruncateSync(this.#fd, 0);
      const buf = Buffer.from(line(header), 'utf8');
      writeSync(this.#fd, buf);
      fdatasyncSync(this.#fd);
      this.#fileBytes = buf.length;
      return;
    }
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    let size = 0;
    const put = (rec: Rec) => {
      const buf = Buffer.from(line(rec), 'utf8');
      writeSync(fd, buf);
      size += buf.length;
      return buf.length;
    };
    const rlines = (json: string, first: number) => {
      const results = JSON.parse(json) as CheckResult[];
      let bytes = 0;
      for (const [i, r] of results.entries()) bytes += put({ t: 'r', s: first + i, r });
      return bytes;
    };
    const rebuilt: SpooledBatch[] = [];
    let openBytes = 0;
    let open: OpenResult[];
    try {
      put(header);
      for (const b of this.#batches.values()) {
        let bytes = rlines(b.resultsJson, b.firstResult);
        bytes += put({ t: 'b', id: b.id, seq: b.seq, createdAt: b.createdAt, n: b.count, f: b.firstResult, st: b.stream });
        for (const [c, ok] of b.done) put({ t: 'a', id: b.id, c, ok });
        rebuilt.push({ ...b, bytes });
      }
      open = this.#open.map((o) => {
        const bytes = rlines(`[${o.json}]`, o.s);
        openBytes += bytes;
        return { json: o.json, bytes, s: o.s };
      });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
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

/** `ENOSPC: no space left on device, write` → `no space left on device (ENOSPC)`. */
function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string') {
    const text = /^[A-Z]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
    return `${text} (${e.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates the spool directory. A recursive mkdir under a read-only parent can report ENOENT;
 * the first missing directory is then made on its own to name the real cause (EROFS, EACCES).
 */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    return;
  } catch (err) {
    let missing = resolve(dir);
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    let cause = err;
    try {
      mkdirSync(missing);
    } catch (inner) {
      cause = inner;
    }
    throw new SpoolOpenError(`the spool directory ${dir} cannot be created: ${describe(cause)} at ${missing}`);
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
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (NO_ROOM.has(code) && code !== 'EROFS' && existsSync(file)) {
        // Created but no room for the pid: the empty file still marks the directory as taken.
        log.warn({ file, err: describe(err) }, 'spool lock taken without its pid (no room on the disk)');
        held.add(key);
        return;
      }
      if (code !== 'EEXIST') throw new SpoolOpenError(`the spool lock ${file} cannot be created: ${describe(err)}`);
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
