/**
 * A collector loads remote write's modules only when the plan configures remote write
 * (collector/app.ts): `mailprobe collector` runs as its own process with a hook that records every
 * module it resolves (test/support/module-log.mjs), takes a push and a scrape, and stops; then the
 * packages it loaded are read back. Without collector.remote_write: no undici, protobufjs or
 * snappyjs (~4 MiB of an idle collector's RSS). With it: they are loaded on that first use, and
 * the receiver gets the pushed result's sample with its value.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { decodeWriteRequest, type DecodedSeries } from '../../collector/outputs/remote-write/proto.js';
import { tokenFor, writePlanFile } from '../../bench/lib/plan.js';
import { tempDir } from '../probe/support.js';
import { collectorUrl } from '../support/cli.js';
import { batchOf, mixedResults } from '../support/results.js';

const root = new URL('../../', import.meta.url).pathname;
const REMOTE_WRITE_PACKAGES = ['undici', 'protobufjs', 'snappyjs'];

/** A collector process with `collector` over the test plan's section: pushes one batch, scrapes, stops; the packages it loaded. */
async function collectorRun(collector: Record<string, unknown>, whileRunning: () => Promise<void> = async () => {}): Promise<Set<string>> {
  const { dir, cleanup } = tempDir();
  try {
    const plan = writePlanFile(dir, { collector });
    const log = join(dir, 'modules.txt');
    const env: NodeJS.ProcessEnv = { ...process.env, MAILPROBE_MODULE_LOG: log, MAILPROBE_LISTEN: '127.0.0.1:0' };
    delete env.NODE_OPTIONS;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', join(root, 'test/support/module-log.mjs'), join(root, 'cli/main.ts'), 'collector', '--config', plan],
      { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const url = await collectorUrl(child, () => err);
      const push = await request(`${url}/v1/results`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokenFor('p-eu')}`, 'content-type': 'application/json' },
        body: JSON.stringify(batchOf(mixedResults())),
      });
      assert.equal(push.statusCode, 200, await push.body.text());
      const scrape = await request(`${url}/metrics`);
      assert.match(await scrape.body.text(), /^mailprobe_dns_ttl_seconds\{.*resolver="8\.8\.8\.8".*\} 3300$/m);
      await whileRunning();
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err.slice(-2000));
    const urls = readFileSync(log, 'utf8').split('\n');
    return new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
  } finally {
    cleanup();
  }
}

test('collector: without remote write no undici, protobufjs or snappyjs is loaded; with it they load and the receiver gets the sample', async () => {
  const got: DecodedSeries[] = [];
  let arrived: () => void = () => {};
  const ttlSample = new Promise<void>((r) => {
    arrived = r;
  });
  const rx = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push(...decodeWriteRequest(Buffer.concat(chunks)).timeseries);
      if (got.some((s) => s.labels.__name__ === 'mailprobe_dns_ttl_seconds')) arrived();
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
  const addr = rx.address();
  const rxUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1/write`;
  try {
    const [plain, rw] = await Promise.all([
      collectorRun({}),
      collectorRun({ remote_write: { url: rxUrl, replica: 'lean', flush_interval: '50ms' } }, () => ttlSample),
    ]);
    // What any collector loads, so an empty log cannot pass.
    for (const p of ['fastify', 'prom-client', 'pino']) assert.ok(plain.has(p), `${p} loaded (loaded: ${[...plain].sort().join(', ')})`);
    for (const p of REMOTE_WRITE_PACKAGES) assert.ok(!plain.has(p), `no remote write: ${p} not loaded (loaded: ${[...plain].sort().join(', ')})`);
    for (const p of REMOTE_WRITE_PACKAGES) assert.ok(rw.has(p), `remote write: ${p} loaded`);
    const ttl = got.find((s) => s.labels.__name__ === 'mailprobe_dns_ttl_seconds' && s.labels.resolver === '8.8.8.8' && s.labels.type === 'A');
    assert.equal(ttl?.labels.instance, 'lean');
    assert.equal(ttl?.samples[0]?.value, 3300);
  } finally {
    rx.closeAllConnections();
    await new Promise<void>((r) => rx.close(() => r()));
  }
});
