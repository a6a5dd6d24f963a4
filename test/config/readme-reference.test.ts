/**
 * The README's configuration reference names every key of `collector.remote_write` as the schema
 * has it (config/schema.ts), so a key added to the schema cannot stay undocumented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RemoteWrite } from '../../config/schema.js';

const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
const reference = readme.slice(readme.indexOf('## Configuration reference'), readme.indexOf('## Architecture'));

test('the configuration reference has a row for every collector.remote_write key', () => {
  const keys = Object.keys(RemoteWrite.properties).map((k) => `collector.remote_write.${k}`);
  assert.ok(keys.length >= 15, `${keys.length} keys`);
  const rows = new Set([...reference.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
  assert.deepEqual(
    keys.filter((k) => !rows.has(k)),
    [],
    'keys without a row in the README',
  );
  // and no row for a key the schema does not have
  assert.deepEqual(
    [...rows].filter((r) => r?.startsWith('collector.remote_write.') && !keys.includes(r)),
    [],
    'rows for keys the schema does not have',
  );
});
