// Runs before `npm start` (prestart) and `npm test` (pretest), so both work on a fresh clone.
//
// The project runs on Node.js 22.22+ or 24.8+. It pins its runtime through the npm registry's
// `node` package (a devDependency): its binary lands in node_modules/.bin, which npm puts first
// on PATH for every script, so `npm start` and `npm test` run on that Node even where the
// system's `node` is older. This file is the one part that runs on the system Node (it may be
// Node 20), so it uses nothing newer than that.
//
// First run: install the dependencies (npm ci). On a Node older than the project supports, it
// first fetches the pinned Node into a temporary folder and runs `npm ci` under it, so npm sees
// a supported engine (no EBADENGINE warnings). Then (unless --no-build) build what changed.
//   node scripts/bootstrap.mjs             install if needed, then build (prestart)
//   node scripts/bootstrap.mjs --no-build  install if needed (pretest: tests run the sources)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(new URL('.', import.meta.url).pathname, '..');
const win = process.platform === 'win32';
const say = (msg) => console.error(`mailprobe: ${msg}`);

/** Node versions the project (its dependencies, dev ones included) supports: package.json engines ^22.22.0 || >=24.8.0. */
export function supported(version) {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number);
  return major >= 25 || (major === 24 && minor >= 8) || (major === 22 && minor >= 22);
}

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.error) {
    say(`${cmd} ${args[0] ?? ''}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// npm: under an npm script npm_execpath names npm's own CLI, so it can run under another node.
function npm(args, node) {
  const cli = process.env.npm_execpath;
  if (node && cli && /\.c?js$/.test(cli)) return run(node, [cli, ...args]);
  const env = node ? { ...process.env, PATH: `${resolve(node, '..')}${win ? ';' : ':'}${process.env.PATH ?? ''}` } : process.env;
  return run(win ? 'npm.cmd' : 'npm', args, env);
}

function install() {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const pinned = lock.packages?.['node_modules/node']?.version;
  const flags = ['--no-audit', '--no-fund'];
  if (supported(process.version) || !pinned) {
    say(`installing dependencies (npm ci) on Node ${process.version}`);
    return npm(['ci', ...flags]);
  }
  say(`the system Node is ${process.version}; this project runs on Node 22.22+ or 24.8+.`);
  say(`fetching Node ${pinned} (the npm package node@${pinned}, pinned in package.json) to install with it`);
  const tmp = mkdtempSync(join(tmpdir(), 'mailprobe-node-'));
  try {
    // Its own package.json: allowScripts lets the package's preinstall fetch the binary.
    const manifest = { private: true, dependencies: { node: pinned }, allowScripts: { node: true } };
    writeFileSync(join(tmp, 'package.json'), JSON.stringify(manifest));
    npm(['install', '--prefix', tmp, '--no-package-lock', ...flags]);
    const node = join(tmp, 'node_modules', 'node', 'bin', win ? 'node.exe' : 'node');
    if (!existsSync(node)) {
      say(`node@${pinned} installed no binary at ${node}`);
      process.exit(1);
    }
    say(`installing dependencies (npm ci) on Node ${pinned}; npm scripts then run node_modules/.bin/node`);
    npm(['ci', ...flags], node);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Whether the dependencies, the pinned Node among them, are installed. */
export function installed() {
  const paths = ['node_modules/.package-lock.json', 'node_modules/typescript', 'node_modules/tsx', `node_modules/.bin/node${win ? '.cmd' : ''}`];
  return paths.every((p) => existsSync(join(root, p)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!installed()) install();
  if (!process.argv.includes('--no-build')) npm(['run', '--silent', 'build']);
}
