#!/usr/bin/env node
// `npm test`: make sure the system peers the tests talk to are installed, then run every
// test under test/ with node's own runner (TypeScript through tsx) on the Node running this
// file: under `npm test` that is the pinned node_modules/.bin/node (see scripts/bootstrap.mjs).
//   npm test                      all tests
//   npm test -- test/collector    only the files under a path (or single files)
//   MAILPROBE_TEST_NODE_MAJOR=22 node scripts/test.mjs   fail unless this is Node 22 (CI)
// It ends with the slowest test files and their times (scripts/test-times.mjs).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { installed, supported } from './bootstrap.mjs';
import { peersMissing, installPeers } from './peers.mjs';
import { clearLane, readTimes, summary } from './test-times.mjs';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
process.chdir(root);

if (!installed()) {
  console.error('mailprobe: dependencies are not installed. Run: npm test (it installs them first), or node scripts/bootstrap.mjs');
  process.exit(1);
}
console.error(`mailprobe: tests run on Node ${process.version} (${process.execPath})`);
if (!supported(process.version)) {
  console.error(`mailprobe: Node ${process.version} is older than this project supports (22.22+ or 24.8+); npm test runs the pinned node_modules/.bin/node`);
  process.exit(1);
}
const wanted = process.env.MAILPROBE_TEST_NODE_MAJOR;
if (wanted && process.versions.node.split('.')[0] !== wanted) {
  console.error(`mailprobe: MAILPROBE_TEST_NODE_MAJOR=${wanted}, but this is Node ${process.version}`);
  process.exit(1);
}

let missing = peersMissing();
if (missing.length > 0) {
  const ok = installPeers(missing);
  missing = peersMissing();
  if (!ok || missing.length > 0) process.exit(1);
}

/** The lane of the lab tests, which run one at a time beside the others (see below). */
const LAB_LANE = /(^|\/)test\/e2e\//;

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) for (const e of readdirSync(path).sort()) collect(join(path, e), out);
  else if (/\.test\.ts$/.test(path)) out.push(path);
  return out;
}
const args = process.argv.slice(2);
const found = (args.length > 0 ? args : ['test']).flatMap((p) => collect(p, []));
if (found.length === 0) {
  console.error(`mailprobe: no test files under ${args.join(' ') || 'test'}`);
  process.exit(1);
}
// Two runners at once, in two lanes: the lab tests (test/e2e/: a whole lab cutover with a real
// Prometheus each, minutes of waiting for compressed timelines and `for:` windows, little CPU) one
// at a time, and every other file two at a time (MAILPROBE_TEST_CONCURRENCY). On 2 cores the
// labs' waiting overlaps the other files instead of holding one of the two slots.
// Within a lane the slowest files start first, so that no long file starts last and runs alone
// at the end: their times are the last run's (.tmp/test-times.json, from scripts/test-times.mjs);
// a file without one (a new file, a fresh clone) comes first.
const times = readTimes();
const ordered = found
  .map((f) => [f, times[relative(root, resolve(f))] ?? Number.POSITIVE_INFINITY])
  .sort((a, b) => b[1] - a[1])
  .map(([f]) => f);
const concurrency = process.env.MAILPROBE_TEST_CONCURRENCY ?? '2';
const lanes = [
  { name: 'others', files: ordered.filter((f) => !LAB_LANE.test(f)), concurrency },
  { name: 'labs', files: ordered.filter((f) => LAB_LANE.test(f)), concurrency: '1' },
].filter((l) => l.files.length > 0);
mkdirSync(join(root, '.tmp'), { recursive: true });
for (const lane of lanes) clearLane(lane.name);
const started = Date.now();
// The first lane's report goes to the terminal as it runs; the labs' is kept and printed after it.
const codes = await Promise.all(
  lanes.map((lane, i) => {
    const out = i === 0 ? undefined : join(root, `.tmp/test-output.${lane.name}.txt`);
    const reporters = [
      // The spec reporter on every Node (Node 22 defaults to TAP when not on a terminal), and the
      // files' times (scripts/test-times.mjs).
      '--test-reporter=spec',
      `--test-reporter-destination=${out ?? 'stdout'}`,
      `--test-reporter=${join(root, 'scripts/test-times.mjs')}`,
      `--test-reporter-destination=${out ?? 'stdout'}`,
    ];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', `--test-concurrency=${lane.concurrency}`, '--test-timeout=300000', ...reporters, ...lane.files],
      {
        stdio: 'inherit',
        env: { ...process.env, MAILPROBE_TEST: '1', MAILPROBE_TEST_LANE: lane.name },
      },
    );
    return new Promise((done) => child.once('close', (code) => done({ lane, code, out })));
  }),
);
for (const { lane, out } of codes) {
  if (out) {
    console.log(`\n== ${lane.name}: ${lane.files.length} test file${lane.files.length === 1 ? '' : 's'}, ${lane.concurrency} at a time, beside the above`);
    process.stdout.write(readFileSync(out, 'utf8'));
  }
}
console.log(
  summary(
    lanes.map((l) => l.name),
    Date.now() - started,
  ),
);
const failed = codes.filter((c) => c.code !== 0).map((c) => c.lane.name);
if (failed.length > 0) console.error(`mailprobe: tests failed in: ${failed.join(', ')}`);
process.exit(failed.length > 0 ? 1 : 0);
