// Runs before `npm start`: on a fresh clone, install the dependencies; then build what changed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(new URL('.', import.meta.url).pathname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (args) => {
  const r = spawnSync(npm, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(resolve(root, 'node_modules/typescript'))) {
  console.error('mailprobe: first start: installing dependencies (npm ci)');
  run(['ci', '--no-audit', '--no-fund']);
}
run(['run', '--silent', 'build']);
