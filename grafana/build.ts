/**
 * `npm run dashboards`: writes the dashboards as JSON to grafana/dashboards/.
 * `npm run dashboards -- --check`: exits 1 if a committed file differs from what the code builds.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDashboards } from './index.js';

const dir = join(import.meta.dirname, 'dashboards');
const check = process.argv.includes('--check');
const rendered = renderDashboards();
let stale = 0;

mkdirSync(dir, { recursive: true });
for (const [file, text] of rendered) {
  const path = join(dir, file);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  if (current === text) continue;
  stale++;
  if (check) console.error(`grafana/dashboards/${file} is out of date`);
  else {
    writeFileSync(path, text);
    console.log(`wrote grafana/dashboards/${file}`);
  }
}
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json') && !rendered.has(f))) {
  stale++;
  console.error(`grafana/dashboards/${file} is not built by any dashboard (remove it)`);
}
if (check && stale > 0) {
  console.error('run: npm run dashboards');
  process.exit(1);
}
if (!check && stale === 0) console.log('dashboards up to date');
