/**
 * The probe's logger: the JSON lines pino writes for the probe (`pino({ name, level },
 * pino.destination({ dest: 2, sync: true }))`, what cli/log.ts gives every other command), byte
 * for byte, without loading pino. pino loads its transport machinery whether or not a transport is
 * used (worker_threads, thread-stream, sonic-boom with node:assert, on-exit-leak-free): ~1 MB of a
 * probe's RSS (README, `bench:footprint`). Errors go through pino's own serializer
 * (pino-std-serializers) and what JSON.stringify cannot write through pino's fallback
 * (safe-stable-stringify, same limits), so an `err` reads as it did. Only what the probe calls:
 * levels, an object and/or a message (no printf-style arguments), child bindings.
 * test/probe/log.test.ts compares its lines with pino's for the same calls.
 */
import stdSerializers from 'pino-std-serializers';
import safeStringify from 'safe-stable-stringify';

const { writeSync } = process.getBuiltinModule('node:fs');
const { hostname } = process.getBuiltinModule('node:os');

type LogFn = { (obj: object, msg?: string): void; (msg: string): void };

/** What the probe's code needs of a logger; a pino Logger is one too (tests and the sink's commands pass those). */
export interface Log {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Log;
  bindings(): Record<string, unknown>;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Number.POSITIVE_INFINITY } as const;
type Level = keyof typeof LEVELS;

/** pino's fallback for values JSON.stringify throws on (circular, BigInt), with pino's default limits. */
const stringifySafe = safeStringify.configure({ maximumDepth: 5, maximumBreadth: 100 });

function stringify(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    try {
      return stringifySafe(value);
    } catch {
      return '"[unable to serialize, circular reference is too complex to analyze]"';
    }
  }
}

/** pino's string escaping (lib/tools.js `asString`; JSON.stringify from Node 25 on, as there). */
const asString =
  Number(process.versions.node.split('.')[0]) >= 25
    ? (s: string): string => JSON.stringify(s)
    : (s: string): string => {
        let result = '';
        let last = 0;
        let found = false;
        let point = 255;
        if (s.length > 100) return JSON.stringify(s);
        for (let i = 0; i < s.length && point >= 32; i++) {
          point = s.charCodeAt(i);
          if (point === 34 || point === 92) {
            result += `${s.slice(last, i)}\\`;
            last = i;
            found = true;
          }
        }
        result = found ? result + s.slice(last) : s;
        return point < 32 ? JSON.stringify(s) : `"${result}"`;
      };

/** One value as pino writes it after `,"key":`, or undefined when pino leaves the key out. */
function value(key: string, v: unknown): string | undefined {
  if (key === 'err') v = stdSerializers.err(v as Error);
  switch (typeof v) {
    case 'undefined':
    case 'function':
      return undefined;
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return String(v);
    case 'string':
      return asString(v);
    default:
      return stringify(v);
  }
}

/** `,"key":value` for each binding, as pino's child bindings (JSON.stringify for every value). */
function chindings(bindings: Record<string, unknown>): string {
  let out = '';
  for (const key in bindings) {
    let v = bindings[key];
    if (!Object.hasOwn(bindings, key) || v === undefined) continue;
    if (key.length >= 5 && (key === 'level' || key === 'serializers' || key === 'formatters' || key === 'customLevels')) continue;
    if (key === 'err') v = stdSerializers.err(v as Error);
    const s = stringify(v);
    if (s !== undefined) out += `,${asString(key)}:${s}`;
  }
  return out;
}

/** Writes the whole line to stderr now (sonic-boom's sync mode: retries a full pipe, finishes a partial write). */
function writeLine(line: string): void {
  let buf = Buffer.from(line);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(2, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

class ProbeLog implements Log {
  readonly #level: number;
  readonly #chindings: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;

  readonly #out: (line: string) => void;

  constructor(level: number, chind: string, out: (line: string) => void) {
    this.#level = level;
    this.#chindings = chind;
    this.#out = out;
    const at = (n: number): LogFn => (n < level ? () => {} : (o: object | string, msg?: string) => this.#write(n, o, msg));
    this.trace = at(LEVELS.trace);
    this.debug = at(LEVELS.debug);
    this.info = at(LEVELS.info);
    this.warn = at(LEVELS.warn);
    this.error = at(LEVELS.error);
    this.fatal = at(LEVELS.fatal);
  }

  child(bindings: Record<string, unknown>): Log {
    return new ProbeLog(this.#level, this.#chindings + chindings(bindings), this.#out);
  }

  /** The bindings without pid and hostname, as pino's `bindings()`. */
  bindings(): Record<string, unknown> {
    const b = JSON.parse(`{${this.#chindings.slice(1)}}`) as Record<string, unknown>;
    delete b.pid;
    delete b.hostname;
    return b;
  }

  #write(level: number, o: object | string | null | undefined, msg: string | undefined): void {
    let obj: Record<string, unknown>;
    if (typeof o !== 'object' || o === null) {
      // pino: a first argument that is not an object is the message.
      if (typeof o !== 'object' && o !== undefined) msg = o;
      obj = {};
    } else if (o instanceof Error) {
      obj = { err: o };
      if (msg === undefined) msg = o.message;
    } else {
      obj = o as Record<string, unknown>;
      if (msg === undefined && obj.msg === undefined && obj.err) msg = (obj.err as { message?: string }).message;
    }
    let line = `{"level":${level},"time":${Date.now()}${this.#chindings}`;
    for (const key in obj) {
      if (!Object.hasOwn(obj, key) || obj[key] === undefined) continue;
      const v = value(key, obj[key]);
      if (v !== undefined) line += `,${asString(key)}:${v}`;
    }
    if (msg !== undefined) {
      const m = typeof msg === 'string' ? asString(msg) : typeof msg === 'function' ? undefined : value('msg', msg);
      if (m !== undefined) line += `,"msg":${m}`;
    }
    this.#out(`${line}}\n`);
  }
}

/** The probe's logger named `name`; `level` as pino's option (unknown → pino's error); lines go to stderr (tests: `out`). */
export function createProbeLog(name: string, level: string = process.env.MAILPROBE_LOG_LEVEL ?? 'info', out: (line: string) => void = writeLine): Log {
  if (!Object.hasOwn(LEVELS, level)) throw Error(`default level:${level} must be included in custom levels`);
  return new ProbeLog(LEVELS[level as Level], chindings({ pid: process.pid, hostname: hostname(), name }), out);
}
