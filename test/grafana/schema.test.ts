/**
 * The generated dashboards type-check against the `Dashboard` type of `@grafana/schema` (with the
 * few fields Grafana writes itself allowed by name in test/support/grafana-dashboard.ts), and every
 * Grafana image the deploy files run is the release of that package: its `schemaVersion` is the
 * newest that Grafana reads, and no dashboard may be newer.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { defaultDashboard } from '@grafana/schema';
import { parseAllDocuments } from 'yaml';
import { typecheck } from '../support/typecheck.js';

const root = resolve(import.meta.dirname, '../..');
const dir = join(root, 'grafana/dashboards');
const DASHBOARD_TYPE = { from: join(root, 'test/support/grafana-dashboard.js'), type: 'SavedDashboard' };

interface DashboardJson {
  schemaVersion: number;
  title: string;
  panels: Record<string, unknown>[];
}
const dashboards = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ file: f, json: JSON.parse(readFileSync(join(dir, f), 'utf8')) as DashboardJson }));

test('every generated dashboard type-checks against the Dashboard type of @grafana/schema', async () => {
  assert.ok(dashboards.length >= 5, dashboards.map((d) => d.file).join(', '));
  const errors = await typecheck(dashboards.map((d) => ({ name: d.file, ...DASHBOARD_TYPE, value: d.json })));
  assert.deepEqual(Object.fromEntries(errors), {});
});

test('the type check refuses a misspelt field, a wrong type and a missing required field', async () => {
  const base = dashboards[0]!.json;
  const misspelt = structuredClone(base) as unknown as Record<string, unknown>;
  misspelt.refreh = '30s';
  const wrongType = structuredClone(base);
  (wrongType.panels[0] as { gridPos: { w: unknown } }).gridPos.w = '12';
  const unversioned = structuredClone(base) as Partial<DashboardJson>;
  delete unversioned.schemaVersion;
  const errors = await typecheck([
    { name: 'misspelt', ...DASHBOARD_TYPE, value: misspelt },
    { name: 'wrong type', ...DASHBOARD_TYPE, value: wrongType },
    { name: 'no schemaVersion', ...DASHBOARD_TYPE, value: unversioned },
  ]);
  assert.deepEqual([...errors.keys()].sort(), ['misspelt', 'no schemaVersion', 'wrong type']);
  assert.match(errors.get('misspelt')?.join('\n') ?? '', /'"refreh"' does not exist/);
  assert.match(errors.get('wrong type')?.join('\n') ?? '', /Type 'string' is not assignable to type 'number'.*"w": "12"/);
  assert.match(errors.get('no schemaVersion')?.join('\n') ?? '', /Property '"?schemaVersion"?' is missing/);
});

function yamlFiles(d: string, out: string[] = []): string[] {
  for (const e of readdirSync(d)) {
    const p = join(d, e);
    if (statSync(p).isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

/** Every `image:` naming a Grafana image in the YAML under deploy/ (compose services, Kubernetes containers). */
function grafanaImages(): { where: string; image: string }[] {
  const found: { where: string; image: string }[] = [];
  const visit = (where: string, v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) visit(where, x);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === 'image' && typeof x === 'string' && /^(docker\.io\/)?grafana\/grafana/.test(x)) found.push({ where, image: x });
        else visit(where, x);
      }
  };
  for (const f of yamlFiles(join(root, 'deploy'))) for (const d of parseAllDocuments(readFileSync(f, 'utf8'))) visit(relative(root, f), d.toJS());
  return found;
}

test('every Grafana image is the pinned release of @grafana/schema, which reads the dashboards schemaVersion', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const pinned = pkg.devDependencies['@grafana/schema'] ?? '';
  assert.match(pinned, /^\d+\.\d+\.\d+$/, 'package.json pins @grafana/schema to one release (no range), the one the images run');
  const installed = (JSON.parse(readFileSync(join(root, 'node_modules/@grafana/schema/package.json'), 'utf8')) as { version: string }).version;
  assert.equal(installed, pinned, 'the installed @grafana/schema is the pinned one (npm ci)');
  const images = grafanaImages();
  const wheres = new Set(images.map((i) => i.where));
  for (const f of ['deploy/compose/docker-compose.yml', 'deploy/compose/docker-compose.ha.yml', 'deploy/kubernetes/grafana/grafana.yaml'])
    assert.ok(wheres.has(f), `${f} runs Grafana`);
  for (const { where, image } of images) assert.equal(image.replace(/^docker\.io\//, ''), `grafana/grafana:${pinned}`, where);
  // Grafana migrates a dashboard of an older schemaVersion on load; a newer one it cannot read.
  const newest = defaultDashboard.schemaVersion;
  assert.ok(typeof newest === 'number' && newest >= 42, `@grafana/schema ${installed} writes schemaVersion ${newest}`);
  for (const d of dashboards)
    assert.ok(d.json.schemaVersion <= newest, `${d.file}: schemaVersion ${d.json.schemaVersion} is newer than Grafana ${pinned} reads (${newest})`);
});
