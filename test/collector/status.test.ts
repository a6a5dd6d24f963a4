/**
 * The status page and /v1/status of a real collector over HTTP: the facts pushed results
 * produce, escaping of what probes send, protection and the off switch. The page as a browser
 * shows it during a lab cutover is tested in test/e2e/status-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { hashToken } from '../../collector/plugins/auth.js';
import { Lru, type StatusV1 } from '../../collector/status/model.js';
import type { CheckResult } from '../../protocol/results.js';
import { startTestCollector, type TestCollector } from '../support/collector.js';
import { testPlan } from '../../bench/lib/plan.js';
import { NEW_IP, OLD_IP, batchOf, mixedResults } from '../support/results.js';

const HOSTILE_RESOLVER = '<script>alert("r")</script>';
const HOSTILE_MESSAGE = '<img src=x onerror=alert(1)> & "quoted"';

function hostile(t: number): CheckResult[] {
  return [
    {
      type: 'dns',
      startedAt: t,
      durationSeconds: 1,
      ok: false,
      phase: 'query',
      errorClass: 'servfail',
      code: 'DNS_SERVFAIL',
      message: HOSTILE_MESSAGE,
      resolver: HOSTILE_RESOLVER,
      authoritative: false,
      name: 'mail.company.test',
      qtype: 'A',
      transport: 'udp',
      rcode: 'SERVFAIL',
      answers: [],
      ttl: null,
      side: 'error',
    },
    // The new IP's PTR is the mail host, which still points at the old IP: confirms only once served.
    {
      type: 'rdns',
      startedAt: t,
      durationSeconds: 0.01,
      ok: true,
      ip: NEW_IP,
      side: 'new',
      ptrNames: ['mail.company.test'],
      fcrdns: false,
      matchesMailHost: true,
    },
    {
      type: 'rdns',
      startedAt: t,
      durationSeconds: 0.01,
      ok: true,
      ip: OLD_IP,
      side: 'old',
      ptrNames: ['host-2.provider-a.test'],
      fcrdns: false,
      matchesMailHost: false,
    },
    {
      type: 'smtp',
      startedAt: t,
      durationSeconds: 0.2,
      ok: false,
      phase: 'banner',
      errorClass: 'protocol',
      code: 'SMTP_PROTOCOL',
      message: HOSTILE_MESSAGE,
      ip: OLD_IP,
      side: 'old',
      port: 25,
      mode: 'rcpt',
      phases: { connect: 0.001 },
    },
  ];
}

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await request(url, { headers });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

describe('status page', () => {
  let c: TestCollector;
  const t = Date.now() - 1000;
  before(async () => {
    c = await startTestCollector(testPlan({ cutover: { dnsbl: ['zen.spamhaus.org'] } }));
    assert.equal((await c.push(batchOf(mixedResults(t), { id: 'p-eu', region: 'eu' }))).status, 200);
    const us = batchOf([...mixedResults(t), ...hostile(t + 10)], { id: 'p-us', region: 'us' });
    us.probe.spool = { bytes: 4096, batches: 3, dropped: 1 };
    assert.equal((await c.push(us)).status, 200);
  });
  after(() => c.close());

  it('/v1/status: the old IP own traffic from a log follower (oldIpTraffic) and its condition of turning the old server off', async () => {
    const last = Date.now() - 60_000;
    const mta: CheckResult = {
      type: 'mta',
      startedAt: last + 1000,
      durationSeconds: 0,
      ok: true,
      ips: [
        {
          ip: OLD_IP,
          side: 'old',
          sessions: [
            { net: '198.51.100.0/24', count: 2 },
            { net: '203.0.113.0/24', count: 7 },
          ],
          messages: [{ net: '203.0.113.0/24', count: 3 }],
          lastSessionAt: last,
          quiet: false,
        },
      ],
      lines: 12,
      unknownLines: 0,
    };
    assert.equal((await c.push(batchOf([mta], { id: 'p-eu', region: 'eu' }))).status, 200);
    // The status renders once a second at most.
    await new Promise((r) => setTimeout(r, 1050));
    const s = JSON.parse((await get(`${c.url}/v1/status`)).text) as StatusV1;
    const at = s.oldIpTraffic[0]?.stillDelivering[0]?.lastAt ?? 0;
    assert.ok(at >= mta.startedAt && at <= Date.now(), `lastAt ${at}: when the collector took the result`);
    assert.ok(s.oldIpTraffic[0]!.quietSeconds >= 60 && s.oldIpTraffic[0]!.quietSeconds < 120, String(s.oldIpTraffic[0]!.quietSeconds));
    assert.deepEqual(s.oldIpTraffic, [
      {
        ip: OLD_IP,
        name: 'provider-a',
        lastSessionAt: last,
        quietSeconds: s.oldIpTraffic[0]!.quietSeconds,
        quiet: false,
        stillDelivering: [
          { net: '203.0.113.0/24', sessions: 7, messages: 3, lastAt: at },
          { net: '198.51.100.0/24', sessions: 2, messages: 0, lastAt: at },
        ],
      },
    ]);
    const cond = s.safeToTurnOldOff.open.find((x) => x.title.startsWith('no inbound session on'));
    assert.deepEqual(cond, {
      title: `no inbound session on provider-a (${OLD_IP}) for 24h (mailprobe mta-log)`,
      met: false,
      detail: `last session ${new Date(last).toISOString().replace(/\.\d{3}Z$/, 'Z')}; still delivering: 203.0.113.0/24 (7 sessions), 198.51.100.0/24 (2 sessions)`,
    });
    assert.equal(s.safeToTurnOldOff.safe, false);
  });

  it('/v1/status carries the facts of the pushed results', async () => {
    const r = await get(`${c.url}/v1/status`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const s = JSON.parse(r.text) as StatusV1;
    assert.equal(s.version, 1);
    assert.equal(s.mailHost, 'mail.company.test');
    // The test plan's window is open and the authoritative server answers new: switched, one resolver on old.
    assert.equal(s.window.state, 'open');
    assert.ok(s.window.closesInSeconds! > 3500 && s.window.closesInSeconds! <= 3600);
    assert.deepEqual(
      s.authoritative.servers.map((x) => [x.server, x.side, x.ttl]),
      [['ns1.company.test', 'new', 300]],
    );
    assert.equal(s.phase, 'switched');
    assert.equal(s.authoritative.safeToSwitchAt, t - 3_600_000);

    const eu = s.resolvers.find((x) => x.region === 'eu')!;
    assert.deepEqual([eu.onOld, eu.onNew, eu.failing], [['8.8.8.8'], ['127.0.0.53'], ['9.9.9.9']]);
    assert.deepEqual(eu.ttlHonour, { honoured: 1, judged: 2, ratio: 0.5 });
    assert.deepEqual(eu.violators, [{ resolver: '8.8.8.8', name: '8.8.8.8', staleSeconds: 1800, extensionSeconds: 3000 }]);
    const us = s.resolvers.find((x) => x.region === 'us')!;
    assert.deepEqual(us.failing, ['9.9.9.9', HOSTILE_RESOLVER]);

    const newEu = s.delivery.find((d) => d.ip === NEW_IP && d.region === 'eu')!;
    assert.deepEqual(
      [newEu.name, newEu.side, newEu.sessions, newEu.successRatio, newEu.p50Seconds, newEu.lastErrorClass],
      ['provider-b', 'new', 2, 0.5, 0.31, 'temp_fail'],
    );
    const oldUs = s.delivery.find((d) => d.ip === OLD_IP && d.region === 'us')!;
    assert.deepEqual([oldUs.sessions, oldUs.successRatio, oldUs.lastErrorClass, oldUs.lastError], [2, 0.5, 'protocol', HOSTILE_MESSAGE]);
    const rtNew = s.roundtrips.find((x) => x.ip === NEW_IP && x.region === 'eu')!;
    assert.deepEqual([rtNew.delivered, rtNew.lost, rtNew.p50Seconds], [1, 1, 2.4]);

    const verdicts = (ip: string) => Object.fromEntries(s.servers.find((x) => x.ip === ip)!.checks.map((l) => [l.check, l.verdict]));
    const ptr = (ip: string) => s.servers.find((x) => x.ip === ip)!.checks.find((l) => l.check === 'ptr')!.evidence;
    assert.equal(ptr(NEW_IP), 'PTR mail.company.test; FCrDNS now: no; once mail.company.test points at 127.0.0.3: yes');
    assert.equal(ptr(OLD_IP), 'PTR host-2.provider-a.test; FCrDNS now: no; once mail.company.test points at 127.0.0.2: no');
    assert.deepEqual(verdicts(OLD_IP), {
      ptr: 'fail',
      spf: 'pass',
      dkim: 'pass',
      dmarc: 'pass',
      dnsbl: 'pass',
      certificate: 'pass',
      'mta-sts': 'pass',
      tlsa: 'warn',
      delivery: 'fail',
    });
    assert.deepEqual(verdicts(NEW_IP), {
      ptr: 'pass',
      spf: 'fail',
      dkim: 'pass',
      dmarc: 'pass',
      dnsbl: 'fail',
      certificate: 'pass',
      'mta-sts': 'pass',
      tlsa: 'warn',
      delivery: 'fail',
    });
    const cert = s.servers.find((x) => x.ip === NEW_IP)!.checks.find((l) => l.check === 'certificate')!;
    assert.match(cert.evidence, /valid for mail\.company\.test; expires \S+ \(59 days\)/);

    assert.equal(s.safeToSwitch.safe, false);
    assert.deepEqual(
      s.safeToSwitch.open.map((o) => o.title),
      ['provider-b (127.0.0.3) ready'],
    );
    assert.match(
      s.safeToSwitch.open[0]!.detail,
      /SPF pass: 127\.0\.0\.3 is not allowed \(softfail\); Blocklists: listed on zen\.spamhaus\.org \(127\.0\.0\.3\)/,
    );
    assert.equal(s.safeToTurnOldOff.safe, false);
    assert.match(s.safeToTurnOldOff.open.find((o) => o.title === 'no resolver answers the old IP')!.detail, /still on old: 8\.8\.8\.8 in eu, 8\.8\.8\.8 in us/);

    assert.deepEqual(
      s.probes.map((p) => [p.id, p.region, p.spoolBatches, p.spoolDropped]),
      [
        ['p-eu', 'eu', null, null],
        ['p-us', 'us', 3, 1],
      ],
    );
  });

  it('the page escapes everything that came from probes and loads nothing from outside', async () => {
    const r = await get(`${c.url}/`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/html/);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
    assert.ok(!r.text.includes('<script'), 'no script element');
    assert.ok(!r.text.includes('<img'), 'no img element');
    assert.ok(r.text.includes('&lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt;'), 'resolver label shown escaped');
    assert.ok(r.text.includes('&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;'), 'message shown escaped');
    assert.match(r.text, /<meta http-equiv="refresh" content="10">/);
    assert.doesNotMatch(r.text, /\b(src|href)="(https?:)?\/\//, 'no external asset');
  });
});

describe('status page: TLSA match per server IP', () => {
  const TLSA_NAME = '_25._tcp.mail.company.test';
  const tlsaLine = (s: StatusV1, ip: string) => {
    const l = s.servers.find((x) => x.ip === ip)!.checks.find((x) => x.check === 'tlsa')!;
    return [l.verdict, l.evidence];
  };
  const published = (t: number, pass: boolean): CheckResult => ({
    type: 'auth',
    startedAt: t,
    durationSeconds: 0.01,
    ok: true,
    method: 'tlsa',
    subject: TLSA_NAME,
    pass,
  });
  /** mixedResults with the TLSA records published, and the SMTP sessions' match per IP. */
  const withDane = (t: number, match: Record<string, boolean>): CheckResult[] =>
    mixedResults(t).map((r) =>
      r.type === 'smtp' && r.tls
        ? { ...r, tlsa: { match: match[r.ip]!, records: 1, detail: `${match[r.ip] ? 'matches' : 'no match among'} 1 TLSA record(s) at ${TLSA_NAME} (3 1 1)` } }
        : r.type === 'auth' && r.method === 'tlsa'
          ? published(t, true)
          : r,
    );

  it('a record that matches one IP and not the other: pass and fail, each with the evidence; records gone: warn for both', async () => {
    const c = await startTestCollector(testPlan());
    // The page renders at most once a second.
    const status = async () => {
      await new Promise((r) => setTimeout(r, 1050));
      return JSON.parse((await get(`${c.url}/v1/status`)).text) as StatusV1;
    };
    try {
      const t = Date.now() - 5000;
      assert.equal((await c.push(batchOf([published(t, true)], { id: 'p-eu', region: 'eu' }))).status, 200);
      let s = await status();
      assert.deepEqual(tlsaLine(s, NEW_IP), [
        'unknown',
        `published at ${TLSA_NAME}; not matched yet against the certificate ${NEW_IP} presents (no TLS session since)`,
      ]);

      assert.equal((await c.push(batchOf(withDane(t + 1000, { [OLD_IP]: true, [NEW_IP]: false }), { id: 'p-eu', region: 'eu' }))).status, 200);
      s = await status();
      assert.deepEqual(tlsaLine(s, OLD_IP), [
        'pass',
        `a record at ${TLSA_NAME} matches the certificate ${OLD_IP} presents (matches 1 TLSA record(s) at ${TLSA_NAME} (3 1 1))`,
      ]);
      assert.deepEqual(tlsaLine(s, NEW_IP), [
        'fail',
        `no record at ${TLSA_NAME} matches the certificate ${NEW_IP} presents (no match among 1 TLSA record(s) at ${TLSA_NAME} (3 1 1)): DANE senders defer mail to it while it is served`,
      ]);
      // TLSA is optional: a mismatch does not hold the switch back (readiness lists only the required lines).
      assert.doesNotMatch(s.safeToSwitch.open.map((o) => o.detail).join(' '), /TLSA/);
      const page = (await get(`${c.url}/`)).text;
      assert.ok(page.includes(`no record at ${TLSA_NAME} matches the certificate ${NEW_IP} presents`), 'the page shows the mismatch');

      assert.equal((await c.push(batchOf([published(t + 2000, false)], { id: 'p-eu', region: 'eu' }))).status, 200);
      s = await status();
      assert.deepEqual(tlsaLine(s, OLD_IP), ['warn', `none at ${TLSA_NAME} (DANE not used)`]);
      assert.deepEqual(tlsaLine(s, NEW_IP), ['warn', `none at ${TLSA_NAME} (DANE not used)`]);
    } finally {
      await c.close();
    }
  });
});

describe('status page settings', () => {
  it('a read token or basic auth admits; nothing else does', async () => {
    const c = await startTestCollector(
      testPlan({ collector: { status: { read_token: hashToken('reader-1'), basic_auth: { user: 'lead', password: hashToken('s3cret') } } } }),
    );
    try {
      const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
      const none = await get(`${c.url}/`);
      assert.equal(none.status, 401);
      assert.match(String(none.headers['www-authenticate']), /^Basic realm="mailprobe status"/);
      assert.equal((await get(`${c.url}/v1/status`, { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await get(`${c.url}/`, { authorization: basic('lead', 'wrong') })).status, 401);
      assert.equal((await get(`${c.url}/`, { authorization: basic('other', 's3cret') })).status, 401);
      assert.equal((await get(`${c.url}/v1/status`, { authorization: 'Bearer reader-1' })).status, 200);
      assert.equal((await get(`${c.url}/?token=reader-1`)).status, 200);
      assert.equal((await get(`${c.url}/`, { authorization: basic('lead', 's3cret') })).status, 200);
      // Pushes and scrapes are not behind the status page's protection.
      assert.equal((await get(`${c.url}/metrics`)).status, 200);
    } finally {
      await c.close();
    }
  });

  it('collector.status.enabled: false serves neither / nor /v1/status', async () => {
    const c = await startTestCollector(testPlan({ collector: { status: { enabled: false } } }));
    try {
      assert.equal((await get(`${c.url}/`)).status, 404);
      assert.equal((await get(`${c.url}/v1/status`)).status, 404);
      assert.equal(c.status, undefined);
    } finally {
      await c.close();
    }
  });
});

describe('status tables (Lru)', () => {
  it('forget the least recently written entry beyond their size; a write of a held key makes it the newest and keeps one entry', () => {
    const lru = new Lru<string, number>(3);
    for (const [k, v] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      lru.set(k, v);
    lru.set('a', 10);
    assert.deepEqual([...lru.values()], [2, 3, 10], 'least recently written first');
    lru.set('c', 30);
    lru.set('c', 31);
    lru.set('d', 4);
    // b was written least recently: it goes, not a (inserted first, rewritten since).
    assert.equal(lru.get('b'), undefined);
    assert.deepEqual([...lru.values()], [10, 31, 4]);
    assert.equal(lru.size, 3);
    lru.set('e', 5);
    lru.set('f', 6);
    assert.deepEqual([...lru.values()], [4, 5, 6]);
    assert.deepEqual(
      ['a', 'c', 'd', 'e', 'f'].map((k) => lru.get(k)),
      [undefined, undefined, 4, 5, 6],
    );
    // The newest written again, and a table of one.
    lru.set('f', 7);
    assert.deepEqual([...lru.values()], [4, 5, 7]);
    const one = new Lru<string, number>(1);
    one.set('x', 1);
    one.set('y', 2);
    one.set('y', 3);
    assert.deepEqual([...one.values()], [3]);
    assert.equal(one.get('x'), undefined);
  });
});
