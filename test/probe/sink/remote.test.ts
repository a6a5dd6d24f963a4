/**
 * A sink on another host: its arrivals API (probe/sink/http.ts), the roundtrip check asking it
 * (sameClock false), and `mailprobe sink` running it as its own process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startAuthoritative, type Authoritative } from '../../../lab/dns/authoritative.js';
import { startMtas, type LabMtas } from '../../../lab/mta/index.js';
import { roundtrip, roundtripSettings, type RoundtripSettings } from '../../../probe/checks/roundtrip.js';
import { arrivalsToken, remoteSink, serveArrivals, type ArrivalsServer } from '../../../probe/sink/http.js';
import { dnsResolver, Sink } from '../../../probe/sink/index.js';
import { testCtx } from '../../../bench/lib/smtp-support.js';
import { testPlan } from '../../../bench/lib/plan.js';
import { tempDir } from '../support.js';

const MAIL_HOST = 'mail.company.test';
const RT = 'mailprobe-rt@company.test';
const SECRET_ENV = 'MAILPROBE_TEST_REMOTE_SECRET';
const SECRET = 'remote-sink-secret-0123456789';
process.env[SECRET_ENV] = SECRET;

let dns: Authoritative;
let mtas: LabMtas;
let sink: Sink;
let api: ArrivalsServer;

before(async () => {
  dns = await startAuthoritative({ domain: 'company.test', mailHost: MAIL_HOST, spf: 'both', dmarc: 'none', initial: { ttl: 60, serve: 'both' } });
  sink = await Sink.start({ host: '127.0.0.1', port: 0, address: RT, secret: SECRET, maxSize: 65536, resolver: dnsResolver(dns.address) });
  api = await serveArrivals(sink, { host: '127.0.0.1', port: 0, secret: SECRET });
  mtas = await startMtas({ mailHost: MAIL_HOST, domain: 'company.test', relay: [RT], sink: { host: sink.host, port: sink.port } });
});

after(async () => {
  await mtas.close();
  await api.close();
  await sink.close();
  await dns.close();
});

const settings = (handle: ReturnType<typeof remoteSink>, deadlineMs = 4000): RoundtripSettings => ({
  smtp: {
    mailHost: MAIL_HOST,
    mode: 'rcpt',
    tls: 'required',
    from: 'probe@probes.test',
    to: 'postmaster@company.test',
    helo: 'probe.probes.test',
    caFile: mtas.certs.caFile,
    connectTimeoutMs: 1000,
    bannerTimeoutMs: 1000,
    commandTimeoutMs: 2000,
  },
  to: RT,
  from: 'mailprobe@company.test',
  secretEnv: SECRET_ENV,
  deadlineMs,
  sink: () => Promise.resolve(handle),
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('remote sink', () => {
  test('the round trip asks the sink on another host: delivered, on two clocks', async () => {
    const r = await roundtrip({ ip: mtas.new.ip, side: 'new', port: mtas.new.port, sameClock: true }, settings(remoteSink(api.url, SECRET)), testCtx());
    assert.equal(r.delivered, true, r.message);
    assert.equal(r.sameClock, false);
    assert.equal(r.deliveringIp, '127.0.0.3');
    assert.equal(r.verdicts?.spf, 'pass');
    assert.ok(r.latencySeconds! >= 0 && r.latencySeconds! < 3);
  });

  test('the arrivals API wants the token derived from the secret', async () => {
    const no = await request(`${api.url}/v1/arrivals/abc?until=${Date.now() + 100}`);
    assert.equal(no.statusCode, 401);
    await no.body.dump();
    const yes = await request(`${api.url}/v1/arrivals/abc?until=${Date.now() + 100}`, { headers: { authorization: `Bearer ${arrivalsToken(SECRET)}` } });
    assert.equal(yes.statusCode, 404);
    assert.deepEqual(await yes.body.json(), { arrived: false });
    await assert.rejects(remoteSink(api.url, 'another-secret-0123456789').waitFor('abc', Date.now() + 1000), /refused the arrivals token/);
  });

  test('an unreachable sink: not arrived by the deadline (lost), no crash', async () => {
    const t0 = Date.now();
    assert.equal(await remoteSink(`http://127.0.0.1:${await freePort()}`, SECRET).waitFor('abc', Date.now() + 300), undefined);
    assert.ok(Date.now() - t0 >= 290);
  });

  test('probes.roundtrip.sink.url makes the plan use the remote sink', async () => {
    const plan = testPlan({ probes: { roundtrip: { to: RT, secret_env: SECRET_ENV, sink: { url: api.url } } } });
    const handle = await roundtripSettings(plan)!.sink();
    assert.equal(handle.sameClock, false);
  });
});

describe('mailprobe sink', () => {
  test('runs the sink with its arrivals API until SIGTERM', async () => {
    const { dir, cleanup } = tempDir();
    const [smtpPort, httpPort] = [await freePort(), await freePort()];
    const plan = {
      cutover: {
        domain: 'company.test',
        mail_host: MAIL_HOST,
        servers: [
          { ip: '127.0.0.2', side: 'old' },
          { ip: '127.0.0.3', side: 'new' },
        ],
        window: { start: '2026-12-04T20:00:00Z', end: '2026-12-05T02:00:00Z' },
      },
      probes: {
        roundtrip: { to: RT, secret_env: SECRET_ENV, sink: { listen: `127.0.0.1:${smtpPort}`, http_listen: `127.0.0.1:${httpPort}`, resolver: dns.address } },
      },
    };
    const file = join(dir, 'plan.yaml');
    writeFileSync(file, stringify(plan));
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'sink', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env },
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out);
        });
        child.once('exit', (code) => reject(new Error(`sink exited ${code}`)));
      });
      assert.equal(line.trim(), `mailprobe sink: SMTP on 127.0.0.1:${smtpPort} for ${RT}, arrivals at http://127.0.0.1:${httpPort}`);
      // Mail relayed by the lab reaches it and the arrivals API reports it.
      mtas.setSink({ host: '127.0.0.1', port: smtpPort });
      const r = await roundtrip(
        { ip: mtas.old.ip, side: 'old', port: mtas.old.port, sameClock: true },
        settings(remoteSink(`http://127.0.0.1:${httpPort}`, SECRET)),
        testCtx(),
      );
      assert.equal(r.delivered, true, r.message);
      assert.equal(r.deliveringIp, '127.0.0.2');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      mtas.setSink({ host: sink.host, port: sink.port });
      if (child.exitCode === null) child.kill('SIGKILL');
      cleanup();
    }
  });
});
