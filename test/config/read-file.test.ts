/**
 * config/files.ts's readFile (fs.readFile as a promise, so a probe never loads node:fs/promises)
 * gives what fs/promises' readFile gave: the same text and bytes, and for a missing file and a
 * directory the same error code and message (the plan loader reports the code, the SMTP check's
 * CA file the message).
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readFile } from '../../config/files.js';
import { tempDir } from '../probe/support.js';

test("readFile reads and fails as fs/promises' readFile", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'plan.yaml');
    writeFileSync(file, 'cutover: { domain: "ünïcode.test" }\n');
    assert.equal(await readFile(file, 'utf8'), await fsp.readFile(file, 'utf8'));
    assert.equal(await readFile(file, 'utf8'), 'cutover: { domain: "ünïcode.test" }\n');
    assert.deepEqual(await readFile(file), await fsp.readFile(file));
    for (const bad of [join(dir, 'missing.yaml'), dir]) {
      const ours = await readFile(bad, 'utf8').then(
        () => assert.fail(`${bad} read`),
        (e: NodeJS.ErrnoException) => e,
      );
      const theirs = await fsp.readFile(bad, 'utf8').then(
        () => assert.fail(`${bad} read`),
        (e: NodeJS.ErrnoException) => e,
      );
      assert.deepEqual([ours.code, ours.message], [theirs.code, theirs.message]);
    }
  } finally {
    cleanup();
  }
});
