// Where the suite's time goes. The default export is a reporter for node's test runner
// (scripts/test.mjs adds it beside the spec reporter in each lane): it records each test file's
// wall time (from the start of its process to its end, imports included) and number of tests in
// .tmp/test-times.<lane>.json. summary() then prints the slowest files of the whole run and the
// sum of all files' times against the run's wall time (how many files ran at once, on average),
// and keeps every file's time in .tmp/test-times.json, which scripts/test.mjs reads to start the
// slowest files first next time.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const dir = join(root, '.tmp');
const HISTORY = join(dir, 'test-times.json');
const laneFile = (lane) => join(dir, `test-times.${lane}.json`);
const SHOWN = Number(process.env.MAILPROBE_TEST_SLOWEST ?? 15);

function readJson(file) {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}

/** The files' times of the last runs (file relative to the root → ms), empty when there is none. */
export function readTimes() {
  return readJson(HISTORY);
}

/** Forgets a lane's times of an earlier run (before the lane starts). */
export function clearLane(lane) {
  rmSync(laneFile(lane), { force: true });
}

/**
 * The slowest files of the lanes' run (`wallMs` long), as lines to print; records their times
 * in .tmp/test-times.json (a run of some files updates theirs and keeps the others').
 */
export function summary(lanes, wallMs) {
  const files = lanes.flatMap((lane) => Object.entries(readJson(laneFile(lane))).map(([file, f]) => ({ file, lane, ...f })));
  if (files.length === 0) return '';
  files.sort((a, b) => b.ms - a.ms);
  const sum = files.reduce((s, f) => s + f.ms, 0);
  const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const tests = files.reduce((n, f) => n + f.tests, 0);
  let out = `\n${tests} tests in ${files.length} files in ${s(wallMs)}; their files' times add up to ${s(sum)} (${(sum / wallMs).toFixed(2)} at once on average). The slowest files (wall time of each file's process):\n`;
  for (const f of files.slice(0, SHOWN))
    out += `${s(f.ms).padStart(9)}  ${String(f.tests).padStart(3)} tests  ${f.file}${lanes.length > 1 ? `  (${f.lane})` : ''}\n`;
  try {
    const history = readTimes();
    for (const f of files) history[f.file] = Math.round(f.ms);
    mkdirSync(dir, { recursive: true });
    writeFileSync(HISTORY, `${JSON.stringify(history, null, 1)}\n`);
  } catch {
    // Only an ordering hint for the next run.
  }
  return out;
}

// biome-ignore lint/style/noDefaultExport: node's test runner takes a reporter module's default export.
export default async function* testTimes(source) {
  /** File (relative to the root) → its wall time in ms and its number of tests. */
  const files = new Map();
  const entry = (file) => {
    const key = relative(root, file);
    if (!files.has(key)) files.set(key, { ms: 0, tests: 0 });
    return files.get(key);
  };
  for await (const event of source) {
    const data = event.data ?? {};
    if (!data.file) continue;
    if (event.type === 'test:complete' && data.nesting === 0 && resolve(String(data.name)) === data.file) {
      // The file's own test: its duration is the whole process's run.
      entry(data.file).ms = data.details?.duration_ms ?? 0;
    } else if ((event.type === 'test:pass' || event.type === 'test:fail') && data.details?.type !== 'suite') {
      entry(data.file).tests++;
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(laneFile(process.env.MAILPROBE_TEST_LANE ?? 'all'), `${JSON.stringify(Object.fromEntries(files))}\n`);
}
