#!/usr/bin/env node
// `npm test`: make sure the system peers the tests talk to are installed, then run every
// test under test/ with node's own runner (TypeScript through tsx) on the Node running this
// file: under `npm test` that is the pinned node_modules/.bin/node (see scripts/bootstrap.mjs).
//   npm test                      all tests
//   npm test -- test/collector    only the files under a path (or single files)
//   MAILPROBE_TEST_NODE_MAJOR=22 node scripts/test.mjs   fail unless this is Node 22 (CI)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { installed, supported } from './bootstrap.mjs';
import { peersMissing, installPeers } from './peers.mjs';

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

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) for (const e of readdirSync(path).sort()) collect(join(path, e), out);
  else if (/\.test\.ts$/.test(path)) out.push(path);
  return out;
}
const args = process.argv.slice(2);
const files = (args.length > 0 ? args : ['test']).flatMap((p) => collect(p, []));
if (files.length === 0) {
  console.error(`mailprobe: no test files under ${args.join(' ') || 'test'}`);
  process.exit(1);
}

const concurrency = process.env.MAILPROBE_TEST_CONCURRENCY ?? '2';
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...files], {
  stdio: 'inherit',
  env: { ...process.env, MAILPROBE_TEST: '1' },
});
process.exit(res.status ?? 1);
