import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dns2 from 'dns2';
import { bitRead, buildQuery, byteRead, createClient, encodeQuery, exchange, serverClient } from '../../../probe/dns/client.js';
import { nodeStyleResolver } from '../../support/node-style-resolver.js';
import { DnsError } from '../../../probe/dns/errors.js';
import { parseResolvConf, parseResolver } from '../../../probe/dns/resolvers.js';
import { startAuthoritative, type Authoritative } from '../../../lab/dns/authoritative.js';
import { fakeUdpServer, replyHeader } from '../../../bench/lib/dns-support.js';

async function rejects(p: Promise<unknown>, code: string): Promise<DnsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DnsError, `expected a DnsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, but the query succeeded`);
}

describe('resolver specs', () => {
  test('system reads the nameservers of resolv.conf in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailprobe-resolv-'));
    try {
      const f = join(dir, 'resolv.conf');
      writeFileSync(f, '# comment\nsearch example\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions edns0\nnameserver ::1\n');
      assert.deepEqual(parseResolver('system', { resolvConf: f }), {
        kind: 'dns',
        label: 'system',
        servers: [
          { host: '127.0.0.53', port: 53 },
          { host: 'fe80::1', port: 53 },
          { host: '::1', port: 53 },
        ],
      });
      assert.deepEqual(parseResolvConf('nameserver not-an-ip\n'), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wire helpers', () => {
  test("the byte reader gives dns2's bit reader's value or error for every offset and length", () => {
    const buf = Buffer.from('c0ffee00ff7f8001a5 5a0102fe fd'.replace(/ /g, ''), 'hex');
    const outcome = (f: typeof bitRead, offset: number, length: number): string => {
      try {
        return `= ${f(buf, offset, length)}`;
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    let aligned = 0;
    for (let offset = -8; offset <= buf.length * 8 + 8; offset++) {
      for (let length = -8; length <= 48; length++) {
        assert.equal(outcome(byteRead, offset, length), outcome(bitRead, offset, length), `offset ${offset} length ${length}`);
        if (offset >= 0 && offset % 8 === 0 && length > 0 && length % 8 === 0 && offset + length <= buf.length * 8) aligned++;
      }
    }
    assert.ok(aligned >= 60, `${aligned} byte-aligned reads compared`);
    assert.equal(byteRead(buf, 8, 32), 0xffee00ff);
    // dns2's parser reads through it (the replies of the lab tests below parse with it).
    assert.equal((dns2.Packet as unknown as { Reader: { read: unknown } }).Reader.read, byteRead, "dns2's reader is the byte reader");
  });

  test("a query is dns2's encoding with the id given, in a buffer of its own", () => {
    const cases = [
      ['mail.company.test', 'A', true, 1232],
      ['company.test', 'MX', false, 1232],
      ['3.0.0.127.in-addr.arpa', 'PTR', true, undefined],
      ['_dmarc.company.test', 'TXT', true, 4096],
    ] as const;
    for (const [name, type, rd, payload] of cases) {
      for (const id of [0, 1, 0xbeef, 0xffff]) {
        const q = buildQuery(name, type, rd, id, payload);
        const p = new dns2.Packet();
        p.header.id = id;
        p.header.rd = rd ? 1 : 0;
        p.questions.push({ name, type: dns2.Packet.TYPE[type], class: dns2.Packet.CLASS.IN } as never);
        if (payload) p.additionals.push((dns2.Packet.Resource.EDNS as unknown as (r: object[], o: object) => never)([], { udpPayloadSize: payload }));
        assert.deepEqual(q, p.toBuffer(), `${name} ${type} rd=${rd} edns=${payload} id=${id}`);
        q.fill(0xaa);
      }
    }
    // Cached per question, never shared: the filled buffers above did not reach the next one.
    assert.deepEqual(buildQuery('mail.company.test', 'A', true, 7, 1232).subarray(2), encodeQuery('mail.company.test', 'A', true, 1232).subarray(2));
  });
});

describe('DNS client against the lab authoritative server', () => {
  let auth: Authoritative;
  before(async () => {
    auth = await startAuthoritative({ initial: { ttl: 7, serve: 'old' }, mtaStsId: 'lab1' });
  });
  after(() => auth.close());

  test('UDP with EDNS, RD=0, answer parsed and timed', async () => {
    const c = serverClient({ host: auth.host, port: auth.port });
    const r = await c.query('mail.company.test', 'A', { recursive: false });
    assert.equal(r.rcodeName, 'NOERROR');
    assert.equal(r.aa, true);
    assert.equal(r.transport, 'udp');
    assert.deepEqual(r.answers, [{ name: 'mail.company.test', type: 1, ttl: 7, value: '127.0.0.2' }]);
    assert.ok(r.durationMs > 0 && r.durationMs < 1000);
    const last = auth.queries.at(-1);
    assert.equal(last?.rd, false);
    assert.equal(last?.transport, 'udp');
    assert.equal(last?.edns, 1232, 'EDNS with a 1232-byte payload');
    await serverClient({ host: auth.host, port: auth.port }, 'x', { ednsPayload: 4096 }).query('mail.company.test', 'A');
    assert.equal(auth.queries.at(-1)?.edns, 4096);
  });

  test('truncated over UDP → the same query over TCP', async () => {
    auth.fault({ kind: 'truncate' });
    try {
      const before = auth.queries.length;
      const r = await serverClient({ host: auth.host, port: auth.port }).query('mail.company.test', 'A');
      assert.equal(r.transport, 'tcp');
      assert.deepEqual(
        r.answers.map((a) => a.value),
        ['127.0.0.2'],
      );
      assert.deepEqual(
        auth.queries.slice(before).map((q) => q.transport),
        ['udp', 'tcp'],
      );
    } finally {
      auth.fault(null);
    }
  });

  test('SERVFAIL and REFUSED come back as RCODEs, NXDOMAIN with the SOA', async () => {
    const c = serverClient({ host: auth.host, port: auth.port });
    auth.fault({ kind: 'servfail' });
    assert.equal((await c.query('mail.company.test', 'A')).rcodeName, 'SERVFAIL');
    auth.fault(null);
    assert.equal((await c.query('www.elsewhere.test', 'A')).rcodeName, 'REFUSED');
    const nx = await c.query('nope.company.test', 'A');
    assert.equal(nx.rcodeName, 'NXDOMAIN');
    assert.equal(nx.authorities[0]?.type, 6);
  });

  test('a reply with the wrong id is ignored until the timeout, then reported as such', async () => {
    auth.fault({ kind: 'bad-id' });
    try {
      const t0 = Date.now();
      const e = await rejects(serverClient({ host: auth.host, port: auth.port }, 'x', { timeoutMs: 300 }).query('mail.company.test', 'A'), 'dns_id_mismatch');
      assert.equal(e.errorClass, 'bad_response');
      assert.ok(Date.now() - t0 >= 290);
    } finally {
      auth.fault(null);
    }
  });

  test('garbage from the server is a malformed reply, at once', async () => {
    auth.fault({ kind: 'garbage' });
    try {
      const e = await rejects(serverClient({ host: auth.host, port: auth.port }, 'x', { timeoutMs: 2000 }).query('mail.company.test', 'A'), 'dns_malformed');
      assert.equal(e.errorClass, 'bad_response');
    } finally {
      auth.fault(null);
    }
  });

  test('tcp:// asks over TCP only; garbage over TCP is malformed too', async () => {
    const c = createClient(parseResolver(`tcp://${auth.address}`));
    const r = await c.query('mail.company.test', 'A');
    assert.equal(r.transport, 'tcp');
    assert.equal(auth.queries.at(-1)?.transport, 'tcp');
    auth.fault({ kind: 'garbage' });
    try {
      await rejects(c.query('mail.company.test', 'A'), 'dns_malformed');
    } finally {
      auth.fault(null);
    }
  });

  test('TXT strings kept as published and joined without separator', async () => {
    const r = await serverClient({ host: auth.host, port: auth.port }).query('s2026._domainkey.company.test', 'TXT');
    const rec = r.answers[0];
    assert.ok(rec?.strings && rec.strings.length > 1, 'a 2048-bit key needs more than one character-string');
    assert.equal(rec.value, rec.strings.join(''));
    assert.match(rec.value, /^v=DKIM1; k=rsa; p=MII/);
  });

  test('node-style resolver for mailauth: shapes and error codes', async () => {
    const resolve = nodeStyleResolver(serverClient({ host: auth.host, port: auth.port }));
    assert.deepEqual(await resolve('company.test', 'MX'), [{ exchange: 'mail.company.test', priority: 10 }]);
    assert.deepEqual(await resolve('_mta-sts.company.test', 'TXT'), [['v=STSv1; id=lab1']]);
    assert.deepEqual(await resolve('mail.company.test', 'A'), ['127.0.0.2']);
    await assert.rejects(resolve('nope.company.test', 'A'), { code: 'ENOTFOUND' });
    await assert.rejects(resolve('mail.company.test', 'MX'), { code: 'ENODATA' });
    auth.fault({ kind: 'servfail' });
    await assert.rejects(resolve('mail.company.test', 'A'), { code: 'ESERVFAIL' });
    auth.fault(null);
  });

  test('exchange() gives the raw packet for forwarding', async () => {
    const { packet, transport } = await exchange({ host: auth.host, port: auth.port }, 'company.test', 'NS', { recursive: false });
    assert.equal(transport, 'udp');
    assert.equal(packet.answers[0]?.ns, 'ns1.company.test');
  });
});

describe('DNS client against broken servers (mocks: what no real server does on purpose)', () => {
  test('silence → timeout after the transport timeout', async () => {
    const s = await fakeUdpServer(() => null);
    try {
      const t0 = Date.now();
      await rejects(serverClient({ host: '127.0.0.1', port: s.port }, 'x', { timeoutMs: 200 }).query('a.test', 'A'), 'dns_timeout');
      const took = Date.now() - t0;
      assert.ok(took >= 190 && took < 1000, `took ${took} ms`);
      assert.equal(s.received, 1);
    } finally {
      await s.close();
    }
  });

  test('the signal aborts a query at once', async () => {
    const s = await fakeUdpServer(() => null);
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('check timeout')), 50);
      const t0 = Date.now();
      const e = await rejects(
        serverClient({ host: '127.0.0.1', port: s.port }, 'x', { timeoutMs: 5000 }).query('a.test', 'A', { signal: ac.signal }),
        'dns_aborted',
      );
      assert.match(e.message, /check timeout/);
      assert.ok(Date.now() - t0 < 1000);
    } finally {
      await s.close();
    }
  });

  test('short garbage, counts that lie, and a query echoed back (QR=0)', async () => {
    for (const [reply, code] of [
      [(q: Buffer) => q.subarray(0, 5), 'dns_malformed'],
      [(q: Buffer) => replyHeader(q, { ancount: 3 }), 'dns_malformed'],
      [(q: Buffer) => q, 'dns_bad_reply'],
    ] as const) {
      const s = await fakeUdpServer(reply);
      try {
        await rejects(serverClient({ host: '127.0.0.1', port: s.port }, 'x', { timeoutMs: 300 }).query('a.test', 'A'), code);
      } finally {
        await s.close();
      }
    }
  });

  test('a stray wrong-id reply before the right one is skipped', async () => {
    const s = await fakeUdpServer((q) => [replyHeader(q, { id: (q.readUInt16BE(0) + 7) & 0xffff }), replyHeader(q)]);
    try {
      const r = await serverClient({ host: '127.0.0.1', port: s.port }, 'x', { timeoutMs: 1000 }).query('a.test', 'A');
      assert.equal(r.rcodeName, 'NOERROR');
      assert.deepEqual(r.answers, []);
    } finally {
      await s.close();
    }
  });

  test('truncated over UDP with no TCP listener → dns_truncated', async () => {
    const s = await fakeUdpServer((q) => replyHeader(q, { tc: true }));
    try {
      const e = await rejects(serverClient({ host: '127.0.0.1', port: s.port }, 'x', { timeoutMs: 500 }).query('a.test', 'A'), 'dns_truncated');
      assert.match(e.message, /ECONNREFUSED/);
    } finally {
      await s.close();
    }
  });

  test('TCP: a server that closes mid-reply, one that never answers, DoT to a non-TLS port', async () => {
    const mk = (onData: (sock: import('node:net').Socket) => void) =>
      new Promise<TcpServer>((resolve) => {
        const srv = createTcpServer((sock) => sock.on('data', () => onData(sock)));
        srv.listen(0, '127.0.0.1', () => resolve(srv));
      });
    // A length prefix of 0x40 bytes, then only two of them, then FIN.
    const half = await mk((sock) => sock.end(Buffer.from([0x00, 0x40, 0x12, 0x34])));
    const mute = await mk(() => undefined);
    try {
      const port = (srv: TcpServer) => (srv.address() as { port: number }).port;
      await rejects(createClient(parseResolver(`tcp://127.0.0.1:${port(half)}`), { timeoutMs: 1000 }).query('a.test', 'A'), 'dns_malformed');
      await rejects(createClient(parseResolver(`tcp://127.0.0.1:${port(mute)}`), { timeoutMs: 200 }).query('a.test', 'A'), 'dns_timeout');
      // DoT against a plain TCP server: the handshake never completes.
      await rejects(createClient(parseResolver(`tls://127.0.0.1:${port(mute)}`), { timeoutMs: 200 }).query('a.test', 'A'), 'dns_timeout');
    } finally {
      half.close();
      mute.close();
    }
  });

  test('the system resolver falls through to the next nameserver when one is silent', async () => {
    const silent = await fakeUdpServer(() => null);
    const good = await fakeUdpServer((q) => replyHeader(q, { rcode: 3 }));
    const dir = mkdtempSync(join(tmpdir(), 'mailprobe-resolv-'));
    try {
      const f = join(dir, 'resolv.conf');
      writeFileSync(f, 'nameserver 127.0.0.1\n');
      // resolv.conf has no ports; build the same spec the parser makes, with the fakes' ports.
      const spec = parseResolver('system', { resolvConf: f });
      assert.equal(spec.kind, 'dns');
      const c = createClient(
        {
          kind: 'dns',
          label: 'system',
          servers: [
            { host: '127.0.0.1', port: silent.port },
            { host: '127.0.0.1', port: good.port },
          ],
        },
        { timeoutMs: 200 },
      );
      const r = await c.query('a.test', 'A');
      assert.equal(r.rcodeName, 'NXDOMAIN');
      assert.equal(r.server, `127.0.0.1:${good.port}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await silent.close();
      await good.close();
    }
  });
});

describe('DoH', () => {
  let auth: Authoritative;
  let http: HttpServer;
  let url = '';
  before(async () => {
    auth = await startAuthoritative({});
    // A real DoH endpoint on loopback (RFC 8484 POST) forwarding to the lab's server.
    http = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (req.url === '/broken') return void res.writeHead(502).end('bad gateway');
        if (req.url === '/html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
        const { createSocket } = await import('node:dgram');
        const s = createSocket('udp4');
        s.on('message', (m) => {
          s.close();
          res.writeHead(200, { 'content-type': 'application/dns-message' }).end(m);
        });
        s.send(Buffer.concat(chunks), auth.port, auth.host);
      });
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  after(async () => {
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
    await auth.close();
  });

  test('a query over DoH', async () => {
    const c = createClient(parseResolver(`${url}/dns-query`));
    const r = await c.query('mail.company.test', 'A');
    assert.equal(r.transport, 'doh');
    assert.deepEqual(
      r.answers.map((a) => a.value),
      ['127.0.0.2'],
    );
  });

  test('HTTP errors and wrong content types are bad responses', async () => {
    await rejects(createClient(parseResolver(`${url}/broken`)).query('mail.company.test', 'A'), 'dns_doh_http');
    await rejects(createClient(parseResolver(`${url}/html`)).query('mail.company.test', 'A'), 'dns_doh_http');
  });
});

describe('DoT and IPv6', () => {
  let auth: Authoritative;
  let auth6: Authoritative;
  let tls: TlsServer;
  let dir = '';
  let cert = '';
  before(async () => {
    auth = await startAuthoritative({});
    auth6 = await startAuthoritative({ host: '::1' });
    // A self-signed certificate for 127.0.0.1 (openssl from the base system).
    dir = mkdtempSync(join(tmpdir(), 'mailprobe-dot-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=dot.lab.test',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const { readFileSync } = await import('node:fs');
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    // A DoT front end: TLS in, the lab server's TCP port out.
    tls = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (sock) => {
      const up = tcpConnect(auth.port, auth.host);
      sock.pipe(up).pipe(sock);
      up.on('error', () => sock.destroy());
      sock.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await new Promise<void>((r) => tls.close(() => r()));
    await auth.close();
    await auth6.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('DNS over TLS with a trusted certificate', async () => {
    const port = (tls.address() as { port: number }).port;
    const r = await createClient(parseResolver(`tls://127.0.0.1:${port}`), { tls: { ca: cert } }).query('mail.company.test', 'A');
    assert.equal(r.transport, 'dot');
    assert.deepEqual(
      r.answers.map((a) => a.value),
      ['127.0.0.2'],
    );
  });

  test('DNS over TLS with an untrusted certificate fails as a network error naming TLS', async () => {
    const port = (tls.address() as { port: number }).port;
    const e = await rejects(createClient(parseResolver(`tls://127.0.0.1:${port}`), { timeoutMs: 1000 }).query('mail.company.test', 'A'), 'dns_network');
    assert.match(e.message, /TLS: .*self.signed/i);
  });

  test('[::1]:port resolvers over UDP and TCP', async () => {
    const spec = parseResolver(`[::1]:${auth6.port}`);
    const r = await createClient(spec).query('mail.company.test', 'A');
    assert.deepEqual([r.transport, r.server, r.answers.map((a) => a.value)], ['udp', `[::1]:${auth6.port}`, ['127.0.0.2']]);
    const t = await createClient(parseResolver(`tcp://[::1]:${auth6.port}`)).query('mail.company.test', 'A');
    assert.equal(t.transport, 'tcp');
  });
});
