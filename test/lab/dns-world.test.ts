import { setTimeout as sleep } from 'node:timers/promises';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { request } from 'undici';
import { createClient, serverClient, type DnsClient } from '../../probe/dns/client.js';
import { parseResolver } from '../../probe/dns/resolvers.js';
import { startDnsWorld, type DnsWorld } from '../../lab/dns/world.js';
import { resolveZoneOptions, stateAt, reverseName, dnsblKey } from '../../lab/dns/zone.js';

describe('zone content', () => {
  test('the timeline: lower TTL, switch, raise TTL', () => {
    const o = resolveZoneOptions({
      initial: { ttl: 3600, serve: 'old' },
      timeline: [
        { at: 3000, serve: 'new', label: 'switch' },
        { at: 1000, ttl: 60, label: 'lower' },
        { at: 5000, ttl: 3600, label: 'raise' },
      ],
    });
    assert.deepEqual(stateAt(o, 0), { ttl: 3600, serve: 'old' });
    assert.deepEqual(stateAt(o, 1000), { ttl: 60, serve: 'old' });
    assert.deepEqual(stateAt(o, 2999), { ttl: 60, serve: 'old' });
    assert.deepEqual(stateAt(o, 3000), { ttl: 60, serve: 'new' });
    assert.deepEqual(stateAt(o, 9999), { ttl: 3600, serve: 'new' });
  });

  test('reverse names and DNSBL keys, IPv4 and IPv6 nibbles', () => {
    assert.equal(reverseName('127.0.0.2'), '2.0.0.127.in-addr.arpa');
    assert.equal(dnsblKey('192.0.2.99'), '99.2.0.192');
    assert.equal(dnsblKey('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2');
  });
});

describe('the DNS world', () => {
  let w: DnsWorld;
  let auth: DnsClient;
  before(async () => {
    w = await startDnsWorld({
      domain: 'shop.test',
      oldIp: '127.0.0.2',
      newIp: '127.0.0.3',
      oldIp6: '::ffff:7f00:2',
      newIp6: 'fd00::3',
      selectors: ['s1', 's2'],
      mtaStsId: '20261204',
      tlsa: true,
      initial: { ttl: 2, serve: 'old' },
      ignoreExtraSeconds: 3,
      clampMinTtl: 4,
      staleSeconds: 10,
      dnsbl: [
        { zone: 'bl.lab.test', listed: { '127.0.0.3': ['127.0.0.2', '127.0.0.4'] } },
        { zone: 'refuse.lab.test', refuse: true },
      ],
    });
    auth = serverClient({ host: w.auth.host, port: w.auth.port });
  });
  after(() => w.close());

  const values = async (c: DnsClient, name: string, type: Parameters<DnsClient['query']>[1]) =>
    (await c.query(name, type, { recursive: false })).answers.map((a) => a.value).sort();

  test('every port is its own, chosen at run time', () => {
    const ports = [w.auth.port, ...Object.values(w.resolvers).map((r) => r.port), Number(new URL(w.mtaStsUrl).port)];
    assert.equal(new Set(ports).size, ports.length);
    for (const p of ports) assert.ok(p > 1024);
  });

  test('zone records from the options', async () => {
    assert.deepEqual(await values(auth, 'mail.shop.test', 'A'), ['127.0.0.2']);
    assert.deepEqual(await values(auth, 'mail.shop.test', 'AAAA'), ['::ffff:7f00:2']);
    assert.deepEqual(await values(auth, 'shop.test', 'MX'), ['mail.shop.test']);
    assert.deepEqual(await values(auth, 'shop.test', 'NS'), ['ns1.shop.test']);
    assert.deepEqual(await values(auth, 'ns1.shop.test', 'A'), ['127.0.0.1']);
    assert.deepEqual(await values(auth, 'shop.test', 'TXT'), ['mailprobe-lab=1', 'v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 ip6:::ffff:7f00:2 ip6:fd00::3 -all']);
    assert.deepEqual(await values(auth, '_dmarc.shop.test', 'TXT'), ['v=DMARC1; p=quarantine; rua=mailto:dmarc@shop.test']);
    assert.deepEqual(await values(auth, '_mta-sts.shop.test', 'TXT'), ['v=STSv1; id=20261204']);
    assert.deepEqual(await values(auth, '2.0.0.127.in-addr.arpa', 'PTR'), ['mail.shop.test']);
    assert.deepEqual(await values(auth, '3.0.0.127.in-addr.arpa', 'PTR'), ['mail.shop.test']);
    const tlsa = await values(auth, '_25._tcp.mail.shop.test', 'TLSA');
    assert.match(tlsa[0] ?? '', /^030101[0-9a-f]{64}$/);
  });

  test('DKIM keys: a real RSA key, split into 255-octet strings', async () => {
    for (const sel of ['s1', 's2']) {
      const r = await auth.query(`${sel}._domainkey.shop.test`, 'TXT');
      const rec = r.answers[0];
      assert.ok(rec?.strings);
      assert.ok(rec.strings.every((s) => s.length <= 255));
      const p = /p=([A-Za-z0-9+/=]+)$/.exec(rec.value)?.[1] ?? '';
      const key = createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
      assert.equal(key.asymmetricKeyType, 'rsa');
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
      assert.equal(key.export({ type: 'spki', format: 'pem' }), w.dkimKey.publicKey);
    }
  });

  test('blocklist zones: listed, not listed, refusing', async () => {
    assert.deepEqual(await values(auth, '3.0.0.127.bl.lab.test', 'A'), ['127.0.0.2', '127.0.0.4']);
    assert.equal((await auth.query('2.0.0.127.bl.lab.test', 'A')).rcodeName, 'NXDOMAIN');
    assert.deepEqual(await values(auth, '2.0.0.127.refuse.lab.test', 'A'), ['127.255.255.254']);
  });

  test('negative answers: NXDOMAIN, NODATA at an empty non-terminal, REFUSED outside the zones', async () => {
    assert.equal((await auth.query('nope.shop.test', 'A')).rcodeName, 'NXDOMAIN');
    const ent = await auth.query('_tcp.mail.shop.test', 'A');
    assert.equal(ent.rcodeName, 'NOERROR');
    assert.deepEqual(ent.answers, []);
    assert.equal((await auth.query('example.org', 'A')).rcodeName, 'REFUSED');
  });

  test('MTA-STS policy served on loopback', async () => {
    const r = await request(`${w.mtaStsUrl}/.well-known/mta-sts.txt`);
    assert.equal(r.statusCode, 200);
    assert.match(await r.body.text(), /mx: mail\.shop\.test/);
  });

  test('caching resolvers: honest, ignoring, clamping and serving stale', async () => {
    const q = (r: { address: string }) => createClient(parseResolver(r.address), { timeoutMs: 1500 });
    const ask = async (r: { address: string }) => {
      const a = await q(r).query('mail.shop.test', 'A');
      return { ip: a.answers[0]?.value, ttl: a.answers[0]?.ttl, rcode: a.rcodeName };
    };
    for (const r of Object.values(w.resolvers)) r.flush();
    // TTL 2 at the authoritative server.
    assert.deepEqual(await ask(w.resolvers.honest), { ip: '127.0.0.2', ttl: 2, rcode: 'NOERROR' });
    assert.deepEqual(await ask(w.resolvers.ignore), { ip: '127.0.0.2', ttl: 5, rcode: 'NOERROR' });
    assert.deepEqual(await ask(w.resolvers.clamp), { ip: '127.0.0.2', ttl: 4, rcode: 'NOERROR' });
    assert.deepEqual(await ask(w.resolvers.stale), { ip: '127.0.0.2', ttl: 2, rcode: 'NOERROR' });
    const fetched = w.resolvers.honest.fetches;
    assert.equal((await ask(w.resolvers.honest)).ip, '127.0.0.2');
    assert.equal(w.resolvers.honest.fetches, fetched, 'answered from the cache');
    w.auth.set({ serve: 'new' });
    w.resolvers.stale.upstreamDown(true);
    await sleep(2100);
    assert.equal((await ask(w.resolvers.honest)).ip, '127.0.0.3', 'honest: expired after the TTL');
    assert.equal((await ask(w.resolvers.ignore)).ip, '127.0.0.2', 'ignore: still old');
    assert.equal((await ask(w.resolvers.clamp)).ip, '127.0.0.2', 'clamp: still old');
    assert.deepEqual(await ask(w.resolvers.stale), { ip: '127.0.0.2', ttl: 30, rcode: 'NOERROR' }, 'stale: upstream down, expired answer served');
    w.resolvers.stale.upstreamDown(false);
    assert.equal((await ask(w.resolvers.stale)).ip, '127.0.0.3', 'stale: refreshed once the upstream is back');
    // Fetched at 0: clamp keeps 4 s, ignore 2 + 3 s.
    await sleep(3000);
    assert.equal((await ask(w.resolvers.clamp)).ip, '127.0.0.3');
    assert.equal((await ask(w.resolvers.ignore)).ip, '127.0.0.3');
    w.auth.set(null);
  });

  test('an upstream fault without stale data is SERVFAIL', async () => {
    w.resolvers.honest.flush();
    w.resolvers.honest.upstreamDown(true);
    try {
      assert.equal((await createClient(parseResolver(w.resolvers.honest.address)).query('mail.shop.test', 'A')).rcodeName, 'SERVFAIL');
    } finally {
      w.resolvers.honest.upstreamDown(false);
    }
  });
});

test('startDnsWorld: a timeline that runs on a compressed clock, and close() releases every port', async () => {
  let fake = 1_000_000;
  const w = await startDnsWorld({
    now: () => fake,
    initial: { ttl: 3600, serve: 'old' },
    timeline: [
      { at: 3_600_000, ttl: 300 },
      { at: 7_200_000, serve: 'new' },
    ],
  });
  const c = serverClient({ host: w.auth.host, port: w.auth.port });
  const a = async () => (await c.query('mail.company.test', 'A')).answers.map((x) => `${x.value}/${x.ttl}`);
  assert.deepEqual(await a(), ['127.0.0.2/3600']);
  fake += 3_600_000;
  assert.deepEqual(await a(), ['127.0.0.2/300']);
  fake += 3_600_000;
  assert.deepEqual(await a(), ['127.0.0.3/300']);
  const addr = w.auth.address;
  await w.close();
  await assert.rejects(createClient(parseResolver(addr), { timeoutMs: 200 }).query('mail.company.test', 'A'), (e: Error) =>
    /ECONNREFUSED|no reply/.test(e.message),
  );
});
