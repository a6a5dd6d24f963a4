/**
 * The preflight against real things on loopback: the lab's DNS world (resolvers and the
 * authoritative server), the lab MTAs (SMTP banner and QUIT), a real collector over HTTP (the
 * dry run: token checked, nothing applied, counted, its clock read). A passing plan, then every
 * kind of failure with the line it must print.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startDnsWorld, type DnsWorld } from '../../lab/dns/world.js';
import { startMtas, type LabMtas } from '../../lab/mta/index.js';
import { formatItem, runPreflight } from '../../probe/preflight.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { runCli, runCliAsync } from '../support/cli.js';
import { testPlan, tokenFor, writePlanFile, type PlanOverrides } from '../../bench/lib/plan.js';

let world: DnsWorld;
let mtas: LabMtas;
let col: TestCollector;
let skewed: TestCollector;
let busy: Server;
let busyPort: number;
let closedPort: number;
const dir = mkdtempSync(join(tmpdir(), 'mailprobe-preflight-'));
const env = { MAILPROBE_TOKEN: tokenFor('p-eu'), MAILPROBE_RT_SECRET: 'preflight-secret-0123456789' };

before(async () => {
  world = await startDnsWorld();
  mtas = await startMtas({ mailHost: 'mail.company.test', domain: 'company.test' });
  col = await startTestCollector();
  skewed = await startTestCollector(testPlan(), { now: () => Date.now() + 30_000 });
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  busyPort = (busy.address() as { port: number }).port;
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
});

after(async () => {
  await Promise.all([world?.close(), mtas?.close(), col?.close(), skewed?.close(), new Promise<void>((r) => (busy ? busy.close(() => r()) : r()))]);
  rmSync(dir, { recursive: true, force: true });
});

const good = (): PlanOverrides => ({
  cutover: {
    servers: [
      { ip: mtas.old.ip, side: 'old', port: mtas.old.port },
      { ip: mtas.new.ip, side: 'new', port: mtas.new.port },
    ],
  },
  probes: {
    resolvers: [world.resolvers.honest.address],
    authoritative: [world.auth.address],
    dns: { lookup_resolver: world.resolvers.honest.address, query_timeout: '3s' },
    smtp: { ca_file: mtas.certs.caFile },
    roundtrip: { to: 'rt@company.test', sink: { listen: '127.0.0.1:0' } },
    push: { collectors: [col.url] },
  },
});

const lines = async (over: PlanOverrides, e: NodeJS.ProcessEnv = env) =>
  (await runPreflight({ plan: testPlan(over), id: 'p-eu', region: 'eu', version: 'test', env: e })).map(formatItem);

test('a plan that works passes every item, and the dry run applies nothing', async () => {
  const out = await lines(good());
  const old = `127.0.0.2:${mtas.old.port}`;
  const neu = `127.0.0.3:${mtas.new.port}`;
  const expected = [
    /^ok {3}secret MAILPROBE_TOKEN: set \(probes\.push\.token_env\)$/,
    /^ok {3}secret MAILPROBE_RT_SECRET: set \(probes\.roundtrip\.secret_env\)$/,
    new RegExp(`^ok {3}file probes\\.smtp\\.ca_file: ${mtas.certs.caFile}: 1 certificate \\(CN=`),
    new RegExp(`^ok {3}collector ${col.url}: accepts the token of p-eu in region eu \\(dry run\\), clock offset [+-]\\d+ ms ±\\d+ ms$`),
    new RegExp(`^ok {3}resolver ${world.resolvers.honest.address}: NOERROR for mail\\.company\\.test A: 127\\.0\\.0\\.2 in \\d+ ms$`),
    new RegExp(`^ok {3}auth:${world.auth.address}: NOERROR authoritative for mail\\.company\\.test A: 127\\.0\\.0\\.2 in \\d+ ms$`),
    new RegExp(`^ok {3}smtp ${old}: banner "220 [^"]*" after \\d+ ms; QUIT: 221`),
    new RegExp(`^ok {3}smtp ${neu}: banner "220 [^"]*" after \\d+ ms; QUIT: 221`),
    /^ok {3}sink listen 127\.0\.0\.1:0: bindable$/,
  ];
  assert.equal(out.length, expected.length, out.join('\n'));
  for (const [i, re] of expected.entries()) assert.match(out[i] ?? '', re);
  assert.equal(await col.sample('mailprobe_collector_batches_total', { result: 'dry_run' }), 1);
  assert.equal(await col.sample('mailprobe_collector_batches_total', { result: 'accepted' }), undefined);
  assert.equal(await col.sample('mailprobe_collector_probe_series', { probe: 'p-eu' }), undefined);
});

test('each kind of failure is one FAIL line with its reason', async () => {
  const g = good();
  const probes = g.probes as Record<string, Record<string, unknown>>;
  const out = await lines(
    {
      cutover: {
        servers: [
          { ip: mtas.old.ip, side: 'old', port: mtas.old.port },
          { ip: '127.0.0.1', side: 'new', port: closedPort },
        ],
      },
      probes: {
        ...probes,
        resolvers: [world.resolvers.honest.address, `127.0.0.1:${closedPort}`],
        authoritative: ['nx.company.test'],
        dns: { lookup_resolver: world.resolvers.honest.address, query_timeout: '2s' },
        roundtrip: { to: 'rt@company.test', sink: { listen: `127.0.0.1:${busyPort}` } },
        push: { collectors: [col.url, `http://127.0.0.1:${closedPort}`, skewed.url] },
      },
    },
    { MAILPROBE_TOKEN: 'not-the-token' },
  );
  const fails = out.filter((l) => l.startsWith('FAIL'));
  assert.deepEqual(
    fails.map((l) => l.replace(/\d+ ms/g, 'N ms')),
    [
      'FAIL secret MAILPROBE_RT_SECRET: not set: export MAILPROBE_RT_SECRET (named by probes.roundtrip.secret_env)',
      `FAIL collector ${col.url}: HTTP 401 unauthorized: missing or unknown bearer token: the token is not known`,
      `FAIL collector http://127.0.0.1:${closedPort}: unreachable: ECONNREFUSED`,
      `FAIL collector ${skewed.url}: HTTP 401 unauthorized: missing or unknown bearer token: the token is not known`,
      `FAIL resolver 127.0.0.1:${closedPort}: mail.company.test A: dns_timeout`,
      `FAIL auth:nx.company.test: cannot be asked: the authoritative server name of probes.authoritative has no address: nx.company.test has no A or AAAA record at ${world.resolvers.honest.address}`,
      `FAIL smtp 127.0.0.1:${closedPort}: ECONNREFUSED`,
      `FAIL sink listen 127.0.0.1:${busyPort}: cannot bind: EADDRINUSE`,
    ],
  );
  // The right token at a collector whose clock is 30 s ahead.
  const clock = (await lines({ probes: { push: { collectors: [skewed.url] } } })).find((l) => l.includes(skewed.url));
  assert.match(
    clock ?? '',
    new RegExp(
      `^FAIL collector ${skewed.url}: accepts the token of p-eu, but clock offset \\+(29|30)\\d{3} ms ±\\d+ ms \\(more than 1000 ms: fix NTP on this host or the collector\\)$`,
    ),
  );
});

test('mailprobe preflight prints the lines and exits 0 when all pass, 1 when one fails; --help', async () => {
  const file = writePlanFile(dir, good());
  const ok = await runCliAsync(['preflight', '--config', file, '--id', 'p-eu', '--region', 'eu'], env);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^preflight: all 9 items pass$/m);
  const viaCheck = await runCliAsync(['config', 'check', '--connect', file, '--id', 'p-eu', '--region', 'eu'], { ...env, MAILPROBE_RT_SECRET: undefined });
  assert.equal(viaCheck.status, 1, viaCheck.stdout + viaCheck.stderr);
  assert.match(viaCheck.stdout, /^FAIL secret MAILPROBE_RT_SECRET: not set: export MAILPROBE_RT_SECRET \(named by probes\.roundtrip\.secret_env\)$/m);
  assert.match(viaCheck.stdout, /^preflight: 1 of 9 items FAIL$/m);
  const help = runCli(['preflight', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: mailprobe preflight --config FILE --id ID --region REGION/);
});
