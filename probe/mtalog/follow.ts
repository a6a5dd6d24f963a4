/**
 * Where a log follower reads its lines: a file it follows like `tail -F` (it survives rotation:
 * the renamed file is read to its end before the new one is opened from its start; and
 * truncation: a file shorter than the position is read again from its start), or a stream such as
 * standard input (`journalctl -f -o cat -u postfix | mailprobe mta-log …`), which ends at EOF.
 *
 * The file is polled (stat + read every `pollMs`), which works the same on every filesystem and
 * for files that do not exist yet. A rotation by copy and truncate (logrotate's copytruncate) may
 * cut the file and let it grow past the position again before the next poll, which looks like
 * growth by size alone: so each poll also compares the last bytes read (up to `MARK` before the
 * position) with what the file holds there now; when they differ, the file was rewritten and is
 * read again from its start.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Log as Logger } from '../log.js';

export interface LineSource {
  /** Resolves when the source has ended (a stream at EOF) or was stopped. */
  readonly ended: Promise<void>;
  stop(): Promise<void>;
}

/** Longest line kept (longer ones are cut; their rest is not a line of its own). */
const MAX_LINE = 64 * 1024;
const CHUNK = 256 * 1024;
/** Bytes before the position kept to recognise the same file content on the next poll. */
const MARK = 256;

/** Lines of a stream until its end. */
export function streamLines(input: Readable, onLine: (line: string) => void): LineSource {
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  rl.on('line', (l) => onLine(l.length > MAX_LINE ? l.slice(0, MAX_LINE) : l));
  const ended = new Promise<void>((resolve) => rl.once('close', resolve));
  return {
    ended,
    async stop() {
      rl.close();
      await ended;
    },
  };
}

export interface FollowOptions {
  path: string;
  onLine: (line: string) => void;
  /** Read the file from its start (default: from its end, only what is written from now on). */
  fromStart?: boolean;
  pollMs?: number;
  log?: Logger;
}

/** Follows a file by name across rotation and truncation until stopped. */
export function followFile(o: FollowOptions): LineSource & { readonly position: () => number } {
  const pollMs = o.pollMs ?? 250;
  let fh: FileHandle | undefined;
  let ino = -1;
  let dev = -1;
  let pos = 0;
  let partial = '';
  /** The last bytes read, which end at `pos` (up to MARK). */
  let mark: Buffer = Buffer.alloc(0);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let first = true;
  let missingLogged = false;
  let resolveEnded!: () => void;
  const ended = new Promise<void>((r) => {
    resolveEnded = r;
  });
  const buf = Buffer.allocUnsafe(CHUNK);

  const emit = (text: string, flush: boolean): void => {
    const all = partial + text;
    const lines = all.split('\n');
    partial = flush ? '' : (lines.pop() ?? '');
    if (flush && lines[lines.length - 1] === '') lines.pop();
    if (partial.length > MAX_LINE) partial = partial.slice(0, MAX_LINE);
    for (const l of lines) o.onLine(l.endsWith('\r') ? l.slice(0, -1) : l.length > MAX_LINE ? l.slice(0, MAX_LINE) : l);
  };

  /** Reads the open file from `pos` to its current end. */
  const drain = async (): Promise<void> => {
    if (!fh) return;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      mark = bytesRead >= MARK ? Buffer.from(buf.subarray(bytesRead - MARK, bytesRead)) : Buffer.concat([mark, buf.subarray(0, bytesRead)]).subarray(-MARK);
      // A UTF-8 sequence cut at the chunk's end is rare in logs and costs one replacement character.
      emit(buf.toString('utf8', 0, bytesRead), false);
    }
  };

  /** The up to MARK bytes of a file that end at `end`. */
  const readMark = async (h: FileHandle, end: number): Promise<Buffer> => {
    const start = Math.max(0, end - MARK);
    const b = Buffer.alloc(end - start);
    const { bytesRead } = await h.read(b, 0, b.length, start);
    return b.subarray(0, bytesRead);
  };

  const reopen = async (fromStart: boolean): Promise<boolean> => {
    let h: FileHandle;
    try {
      h = await open(o.path, 'r');
    } catch (err) {
      if (!missingLogged) o.log?.warn({ path: o.path, err: (err as Error).message }, 'log file not readable yet; waiting for it');
      missingLogged = true;
      return false;
    }
    const s = await h.stat();
    if (fh) await fh.close().catch(() => undefined);
    fh = h;
    ino = s.ino;
    dev = s.dev;
    pos = fromStart ? 0 : s.size;
    mark = await readMark(h, pos);
    partial = '';
    if (missingLogged) o.log?.info({ path: o.path }, 'log file opened');
    missingLogged = false;
    return true;
  };

  const tick = async (): Promise<void> => {
    if (!fh) {
      // The first open starts at the end (unless fromStart); a file that appears later is read whole.
      const ok = await reopen(first ? (o.fromStart ?? false) : true);
      first = false;
      if (!ok) return;
    }
    let s: Awaited<ReturnType<typeof stat>> | undefined;
    try {
      s = await stat(o.path);
    } catch {
      // Renamed away and not yet created again: keep reading the old file.
    }
    if (s && (s.ino !== ino || s.dev !== dev)) {
      // Rotated: what was still written to the old file first, then the new file from its start.
      await drain();
      emit('', true);
      o.log?.info({ path: o.path }, 'log file rotated; reading the new file from its start');
      await reopen(true);
    } else if (s && (s.size < pos || (pos > 0 && fh && !(await readMark(fh, pos)).equals(mark)))) {
      // Cut (copytruncate), maybe written past the old position again since the last poll: what
      // stands before the position is no longer what was read there.
      o.log?.info({ path: o.path, was: pos, now: s.size }, 'log file truncated; reading it again from its start');
      pos = 0;
      mark = Buffer.alloc(0);
      partial = '';
    }
    await drain();
  };

  let running: Promise<void> = Promise.resolve();
  const loop = async (): Promise<void> => {
    if (stopped) return;
    try {
      running = tick();
      await running;
    } catch (err) {
      o.log?.warn({ path: o.path, err: (err as Error).message }, 'reading the log file failed; trying again');
      if (fh) await fh.close().catch(() => undefined);
      fh = undefined;
    }
    if (!stopped) timer = setTimeout(() => void loop(), pollMs);
  };
  void loop();

  return {
    ended,
    position: () => pos,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running.catch(() => undefined);
      await fh?.close().catch(() => undefined);
      fh = undefined;
      resolveEnded();
    },
  };
}
