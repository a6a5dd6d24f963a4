/**
 * A probe loads the modules of the check types it runs and no others (issue: a lean probe):
 * `mailprobe probe --checks …` runs as its own process with a hook that records every
 * module it resolves (test/support/module-log.mjs), until each of its check types has produced
 * results; then the packages it loaded are read back. With `--checks dns,smtp,auth`, mailauth, joi,
 * smtp-server, undici (pushes, DoH and the MTA-STS policy go over node:http), prom-client (the
 * probe's /metrics has its own registry: probe/self-metrics.ts) and pino with sonic-boom,
 * thread-stream and node:assert (its logger is its own: probe/log.ts) are absent: the
 * auth check's SPF and MTA-STS are its own code (probe/auth/). A roundtrip check with a remote
 * sink loads no mailauth either. Only the round-trip sink in the probe process (DKIM
 * verification and DMARC from mailauth's submodules) loads mailauth (with joi) and smtp-server,
 * and even then none of what mailauth has and the probe never uses (BIMI with its VMC and XML
 * parsers); the collector's fastify is never in a probe. The module log holds Node's own modules
 * too: none of those an ESM import of node:http would load. And the process the test started runs
 * under the probe's V8 flags (it re-executed itself with them), or none with MAILPROBE_NODE_FLAGS=.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writePlanFile } from '../../bench/lib/plan.js';
import { PROBE_TUNING } from '../../config/node-runtime.js';
import { tempDir } from '../probe/support.js';

const root = new URL('../../', import.meta.url).pathname;

/** The packages (node_modules/<name>) and files a probe running `checks` loaded, once each type produced a result. */
async function packagesLoaded(
  checks: readonly string[],
  sink: Record<string, string> = { listen: '127.0.0.1:0' },
  env: NodeJS.ProcessEnv = {},
): Promise<{ packages: Set<string>; urls: string[]; cmdline: string[] }> {
  const { dir, cleanup } = tempDir();
  try {
    const plan = writePlanFile(dir, {
      probes: {
        interval: '300ms',
        window_interval: '300ms',
        timeout: '300ms',
        resolvers: ['127.0.0.1:9'],
        smtp: { port: 9, connect_timeout: '200ms' },
        roundtrip: { to: 'rt@company.test', sink },
        push: { spool_dir: join(dir, 'spool') },
      },
    });
    const log = join(dir, 'modules.txt');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        join(root, 'test/support/module-log.mjs'),
        join(root, 'cli/main.ts'),
        'probe',
        '--config',
        plan,
        '--id',
        'p-eu',
        '--region',
        'eu',
        '--checks',
        checks.join(','),
      ],
      {
        cwd: root,
        env: { ...process.env, MAILPROBE_MODULE_LOG: log, MAILPROBE_LOG_LEVEL: 'debug', MAILPROBE_RT_SECRET: 'a-secret-of-enough-length-0123456789', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    // One debug line per result: wait until every type has one, so modules loaded lazily by a run count too.
    const seen = new Set<string>();
    let err = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no results of ${checks.filter((c) => !seen.has(c)).join(', ')} in 60 s:\n${err.slice(-2000)}`)), 60_000);
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        for (const m of err.matchAll(/"type":"([a-z]+)"/g)) if (checks.includes(m[1] ?? '')) seen.add(m[1] ?? '');
        if (checks.every((c) => seen.has(c))) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`probe exited ${code}:\n${err.slice(-2000)}`)));
    }).catch((e: unknown) => {
      child.kill('SIGKILL'); // a probe that has not produced every type must not outlive the test
      throw e;
    });
    // The command line of the process the test started, now: the probe re-executed itself in place.
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err.slice(-2000));
    const urls = readFileSync(log, 'utf8').split('\n');
    return { packages: new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? [])), urls, cmdline };
  } finally {
    cleanup();
  }
}

test('--checks dns,smtp,auth loads no mailauth, joi, smtp-server, undici or prom-client; roundtrip with a remote sink loads no mailauth either; the sink in the probe loads it, without BIMI; a probe never loads fastify', async () => {
  const [lean, remote, full] = await Promise.all([
    packagesLoaded(['dns', 'smtp', 'auth']),
    // With V8's defaults (MAILPROBE_NODE_FLAGS empty).
    packagesLoaded(['roundtrip', 'rdns'], { url: 'http://127.0.0.1:9' }, { MAILPROBE_NODE_FLAGS: '' }),
    packagesLoaded(['roundtrip']),
  ]);
  // The probe command applies its V8 flags itself (config/node-runtime.ts), before the script, to the same process.
  const script = lean.cmdline.findIndex((a) => a.endsWith('cli/main.ts'));
  assert.deepEqual(
    lean.cmdline.slice(1, script).filter((a) => a.startsWith('--') && a !== '--import'),
    [...PROBE_TUNING.flags],
    lean.cmdline.join(' '),
  );
  assert.deepEqual(
    remote.cmdline.filter((a) => PROBE_TUNING.flags.includes(a)),
    [],
    `MAILPROBE_NODE_FLAGS='': no flags added (${remote.cmdline.join(' ')})`,
  );
  // Node's own modules a probe never uses, which an ESM import of node:http (and nodemailer's and
  // dns2's ESM entry points) would load: Node's bundled undici (fetch) and http2. (An ESM import of
  // node:fs loads the REPL history too, but so does tsx, which runs this probe from source.)
  assert.ok(lean.urls.includes('builtin:net'), 'the log holds built-in modules');
  assert.deepEqual(
    lean.urls.filter((u) => /^builtin:(internal\/deps\/undici\/|http2$)/.test(u)),
    [],
    'dns,smtp,auth: no fetch/undici or http2 of Node',
  );
  // What the lean probe does use, so an empty log cannot pass: its packages, and the auth check's
  // own SPF and MTA-STS code (probe/auth/).
  for (const p of ['dns2', 'nodemailer', '@sinclair/typebox', 'pino-std-serializers']) assert.ok(lean.packages.has(p), `dns,smtp,auth: ${p} loaded`);
  for (const f of ['/probe/auth/spf.ts', '/probe/auth/mta-sts.ts'])
    assert.ok(
      lean.urls.some((u) => u.endsWith(f)),
      `dns,smtp,auth: ${f} loaded`,
    );
  // Pushes, DoH and the MTA-STS policy go over node:http (probe/http-client.ts): undici (its parser is WebAssembly) is not loaded;
  // the probe's own /metrics is its own small registry (probe/self-metrics.ts): no prom-client, no @opentelemetry/api.
  // Built-ins only the collector or nothing on a probe's path use: node:fs/promises (its namespace
  // loads readline's interface, the REPL history and the file watchers; config/files.ts reads
  // files without it) and node:v8 (the collector's start line reads it on use). tsx loads
  // fs/promises itself here, so that one is checked as no import from the project's own files.
  assert.deepEqual(
    lean.urls.filter((u) => u === 'builtin:v8' || u.startsWith('node:fs/promises <- ')),
    [],
    'dns,smtp,auth: no node:v8, no import of node:fs/promises',
  );
  assert.ok(
    lean.urls.some((u) => /^node:path <- file:.*\/cli\/probe\.ts$/.test(u)),
    'the log holds which project files import a built-in',
  );
  // The probe's logger is its own (probe/log.ts): no pino with its transport machinery (thread-stream,
  // sonic-boom, which loads node:assert; worker_threads too, but tsx loads that here itself).
  assert.deepEqual(
    lean.urls.filter((u) => u === 'builtin:assert'),
    [],
    'dns,smtp,auth: no node:assert (sonic-boom loaded it)',
  );
  for (const p of [
    'mailauth',
    'joi',
    'smtp-server',
    'imapflow',
    'fastify',
    'undici',
    'libmime',
    'tldts',
    'ipaddr.js',
    'prom-client',
    '@opentelemetry/api',
    'pino',
    'sonic-boom',
    'thread-stream',
    'on-exit-leak-free',
  ])
    assert.ok(!lean.packages.has(p), `dns,smtp,auth: ${p} not loaded (loaded: ${[...lean.packages].sort().join(', ')})`);
  for (const p of ['mailauth', 'joi', 'smtp-server', 'fastify'])
    assert.ok(!remote.packages.has(p), `roundtrip (sink.url),rdns: ${p} not loaded (loaded: ${[...remote.packages].sort().join(', ')})`);
  for (const p of ['mailauth', 'smtp-server']) assert.ok(full.packages.has(p), `roundtrip with the sink in the probe: ${p} loaded`);
  for (const f of ['mailauth/lib/dkim/verify.js', 'mailauth/lib/dmarc/index.js', 'mailauth/lib/spf/index.js'])
    assert.ok(
      full.urls.some((u) => u.endsWith(`/node_modules/${f}`)),
      `roundtrip with the sink in the probe: ${f} loaded`,
    );
  assert.deepEqual(
    full.urls.filter((u) => /\/node_modules\/mailauth\/lib\/(bimi|mailauth\.js)|\/node_modules\/(@postalsys\/vmc|fast-xml-parser|fastify)\//.test(u)),
    [],
    'roundtrip with the sink in the probe: no BIMI, VMC, XML parser, mailauth entry point or fastify',
  );
});
