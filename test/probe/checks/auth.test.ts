import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { authCheck, authSettings, parseDkimKey, runAuth, type AuthTarget } from '../../../probe/checks/auth.js';
import type { AuthResult } from '../../../protocol/results.js';
import type { PlanConfig } from '../../../config/schema.js';
import { isCheckResult } from '../../../probe/valid-result.js';
import { startDnsWorld, type DnsWorld, type DnsWorldOptions } from '../../../lab/dns/world.js';
import { startTestCollector, type TestCollector } from '../../support/collector.js';
import { batchOf, makeCtx, worldPlan } from '../../../bench/lib/dns-support.js';

const view = ({ method, subject, side, ok, pass, detail, errorClass, code, mtaStsMode }: AuthResult) => ({
  ...(mtaStsMode ? { mtaStsMode } : {}),
  method,
  subject,
  ...(side ? { side } : {}),
  ok,
  pass,
  ...(detail !== undefined ? { detail } : {}),
  ...(ok ? {} : { errorClass, code }),
});

async function runAll(plan: PlanConfig): Promise<AuthResult[]> {
  const out: AuthResult[] = [];
  for (const t of authCheck.targets(plan)) {
    const r = await runAuth(t.target, t.settings, makeCtx());
    assert.ok(isCheckResult(r), JSON.stringify(r));
    out.push(r);
  }
  return out;
}

const pemBody = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

describe('auth check against the lab', () => {
  let w: DnsWorld;
  let col: TestCollector;
  const worlds: DnsWorld[] = [];
  const world = async (o: DnsWorldOptions) => {
    const x = await startDnsWorld(o);
    worlds.push(x);
    return x;
  };
  before(async () => {
    w = await world({ mtaStsId: '20261204T2000', tlsa: true, selectors: ['s2026'] });
    col = await startTestCollector(worldPlan(w));
  });
  after(async () => {
    await col.close();
    await Promise.all(worlds.map((x) => x.close()));
  });

  test('all good during the overlap: SPF passes for both IPs, DKIM, DMARC, MTA-STS, TLSA; metrics', async () => {
    const out = await runAll(worldPlan(w));
    assert.deepEqual(out.map(view), [
      { method: 'spf', subject: '127.0.0.2', side: 'old', ok: true, pass: true, detail: 'pass (v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all)' },
      { method: 'spf', subject: '127.0.0.3', side: 'new', ok: true, pass: true, detail: 'pass (v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all)' },
      { method: 'dkim', subject: 's2026', ok: true, pass: true, detail: 'rsa 2048 bits' },
      { method: 'dmarc', subject: 'company.test', ok: true, pass: true, detail: 'p=quarantine' },
      {
        mtaStsMode: 'enforce',
        method: 'mta-sts',
        subject: 'company.test',
        ok: true,
        pass: true,
        detail: 'id 20261204T2000, mode enforce, mx mail.company.test',
      },
      { method: 'tlsa', subject: 'mail.company.test', ok: true, pass: true, detail: out[5]?.detail },
    ]);
    assert.match(out[5]?.detail ?? '', /^3 1 1 [0-9a-f]{16}…$/);
    await col.push(batchOf(out));
    assert.equal(await col.sample('mailprobe_spf_pass', { ip: '127.0.0.2', side: 'old' }), 1);
    assert.equal(await col.sample('mailprobe_spf_pass', { ip: '127.0.0.3', side: 'new' }), 1);
    assert.equal(await col.sample('mailprobe_dkim_key_present', { selector: 's2026' }), 1);
    assert.equal(await col.sample('mailprobe_dmarc_present', { domain: 'company.test' }), 1);
    assert.equal(await col.sample('mailprobe_mta_sts_ok', { domain: 'company.test' }), 1);
    assert.equal(await col.sample('mailprobe_mta_sts_mode', { domain: 'company.test', mode: 'enforce' }), 1);
    assert.equal(await col.sample('mailprobe_tlsa_present', { name: 'mail.company.test' }), 1);
  });

  test('SPF lists only the old IP: the new one fails (and the envelope domain is spf_domain when set)', async () => {
    const bad = await world({ spf: 'old', domain: 'bounce.test', mailHost: 'mail.bounce.test' });
    // The envelope domain differs from the mail domain: SPF is evaluated for bounce.test.
    const plan = worldPlan(bad, { cutover: { spf_domain: 'bounce.test' } });
    const s = authSettings(plan);
    const ctx = makeCtx();
    const r = await runAuth({ method: 'spf', subject: '127.0.0.3', side: 'new' }, s, ctx);
    assert.deepEqual(view(r), { method: 'spf', subject: '127.0.0.3', side: 'new', ok: true, pass: false, detail: 'fail (v=spf1 ip4:127.0.0.2 -all)' });
    const ok = await runAuth({ method: 'spf', subject: '127.0.0.2', side: 'old' }, s, ctx);
    assert.equal(ok.pass, true);
    await col.push(batchOf([r]));
    assert.equal(await col.sample('mailprobe_spf_pass', { ip: '127.0.0.3', side: 'new' }), 0);
  });

  test('missing records are findings: no SPF, no DKIM key, no DMARC, no TLSA; no MTA-STS policy passes', async () => {
    const bare = await world({ spf: 'none', selectors: [], dmarc: null });
    const out = await runAll(worldPlan(bare, { cutover: { dkim_selectors: ['gone'] } }));
    assert.deepEqual(out.map(view), [
      { method: 'spf', subject: '127.0.0.2', side: 'old', ok: true, pass: false, detail: 'none' },
      { method: 'spf', subject: '127.0.0.3', side: 'new', ok: true, pass: false, detail: 'none' },
      { method: 'dkim', subject: 'gone', ok: true, pass: false, detail: 'no key at gone._domainkey.company.test' },
      { method: 'dmarc', subject: 'company.test', ok: true, pass: false, detail: 'no DMARC record at _dmarc.company.test' },
      { method: 'mta-sts', subject: 'company.test', ok: true, pass: true, detail: 'no MTA-STS policy published' },
      { method: 'tlsa', subject: 'mail.company.test', ok: true, pass: false, detail: 'no TLSA at _25._tcp.mail.company.test' },
    ]);
  });

  test('an MTA-STS policy that does not list the mail host; one that cannot be fetched', async () => {
    const other = await world({ mtaStsId: 'x1', mtaStsPolicy: 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 600\n' });
    const r = await runAuth({ method: 'mta-sts', subject: 'company.test' }, authSettings(worldPlan(other)), makeCtx());
    assert.deepEqual(view(r), {
      mtaStsMode: 'enforce',
      method: 'mta-sts',
      subject: 'company.test',
      ok: true,
      pass: false,
      detail: 'id x1, mode enforce, mx mx.elsewhere.test: does not list mail.company.test',
    });
    // The collector keeps one mode series per domain: the current one.
    await col.push(batchOf([r]));
    assert.equal(await col.sample('mailprobe_mta_sts_mode', { domain: 'company.test', mode: 'enforce' }), 1);
    const testing = await world({ mtaStsId: 'x2', mtaStsPolicy: 'version: STSv1\nmode: testing\nmx: mx.elsewhere.test\nmax_age: 600\n' });
    const rt = await runAuth({ method: 'mta-sts', subject: 'company.test' }, authSettings(worldPlan(testing)), makeCtx());
    assert.deepEqual([rt.pass, rt.mtaStsMode], [false, 'testing']);
    await col.push(batchOf([rt]));
    assert.equal(await col.sample('mailprobe_mta_sts_mode', { domain: 'company.test', mode: 'testing' }), 1);
    assert.equal(await col.sample('mailprobe_mta_sts_mode', { domain: 'company.test', mode: 'enforce' }), undefined);
    const unreachable = worldPlan(other, {
      dns: { lookup_resolver: other.resolvers.honest.address, query_timeout: '1s', mta_sts_url: 'http://127.0.0.1:9/.well-known/mta-sts.txt' },
    });
    const f = await runAuth({ method: 'mta-sts', subject: 'company.test' }, authSettings(unreachable), makeCtx());
    assert.deepEqual(view(f), { method: 'mta-sts', subject: 'company.test', ok: false, pass: false, errorClass: 'network', code: 'mta_sts_fetch' });
    await col.push(batchOf([f]));
    assert.equal(await col.sample('mailprobe_mta_sts_ok', { domain: 'company.test' }), 0);
  });

  test('DNS failure during SPF is a temperror failure, not a fail', async () => {
    const plan = worldPlan(w, { dns: { lookup_resolver: w.auth.address, query_timeout: '300ms' } });
    w.auth.fault({ kind: 'servfail' });
    try {
      const r = await runAuth({ method: 'spf', subject: '127.0.0.3', side: 'new' }, authSettings(plan), makeCtx());
      assert.equal(r.ok, false);
      assert.equal(r.errorClass, 'servfail');
      assert.equal(r.code, 'spf_temperror');
      const d = await runAuth({ method: 'dkim', subject: 's2026' } as AuthTarget, authSettings(plan), makeCtx());
      assert.deepEqual([d.ok, d.errorClass, d.code], [false, 'servfail', 'dns_servfail']);
    } finally {
      w.auth.fault(null);
    }
  });
});

describe('DKIM key records', () => {
  const rsa = (bits: number) => pemBody(generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ type: 'spki', format: 'pem' }).toString());
  test('valid, short, revoked, wrong type, garbage', () => {
    const key = rsa(1024);
    assert.deepEqual(parseDkimKey(`v=DKIM1; k=rsa; p=${key}`, 1024), { pass: true, detail: 'rsa 1024 bits' });
    assert.deepEqual(parseDkimKey(`v=DKIM1; k=rsa; p=${key}`, 2048), { pass: false, detail: 'rsa key of 1024 bits is shorter than 2048' });
    assert.deepEqual(parseDkimKey('v=DKIM1; k=rsa; p=', 1024), { pass: false, detail: 'key revoked (empty p=)' });
    assert.deepEqual(parseDkimKey('v=DKIM2; p=abc', 1024), { pass: false, detail: 'unknown version v=DKIM2' });
    assert.deepEqual(parseDkimKey('v=DKIM1; k=rsa', 1024), { pass: false, detail: 'no p= tag' });
    assert.equal(parseDkimKey('v=DKIM1; p=!!!', 1024).detail, 'p= is not base64');
    assert.match(parseDkimKey('v=DKIM1; p=AAAA', 1024).detail, /^key does not parse/);
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
    assert.deepEqual(parseDkimKey(`v=DKIM1; k=ed25519; p=${ed}`, 1024), { pass: true, detail: 'ed25519' });
    assert.deepEqual(parseDkimKey(`v=DKIM1; k=ed25519; p=${key}`, 1024), { pass: false, detail: 'k=ed25519 but the key is rsa' });
  });
});
