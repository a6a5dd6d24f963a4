/**
 * DANE matching of the smtp check against the real lab MTA's certificate and TLSA records served
 * by the lab's authoritative DNS: a matching record per usage/selector/type covered, a record for
 * another key, none at all; the metric the collector exports from it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeLabCerts, tlsaRecordFor, type LabCerts } from '../../../lab/mta/certs.js';
import { startMtas, type LabMtas } from '../../../lab/mta/index.js';
import { startDnsWorld, type DnsWorld } from '../../../lab/dns/world.js';
import { smtp, smtpSettings } from '../../../probe/checks/smtp.js';
import { isCheckResult } from '../../../probe/valid-result.js';
import type { SmtpResult } from '../../../protocol/results.js';
import { startTestCollector } from '../../support/collector.js';
import { worldPlan } from '../../../bench/lib/dns-support.js';
import { batchOf, testCtx } from '../../../bench/lib/smtp-support.js';

const MAIL_HOST = 'mail.company.test';
let certs: LabCerts;
let mtas: LabMtas;
const worlds: DnsWorld[] = [];

before(async () => {
  certs = await makeLabCerts({ mailHost: MAIL_HOST });
  mtas = await startMtas({ mailHost: MAIL_HOST, domain: 'company.test', certs });
});
after(async () => {
  await Promise.all(worlds.map((w) => w.close()));
  await mtas.close();
  await certs.cleanup();
});

/** One session to the new IP with these TLSA records published (undefined: none). */
async function session(tlsa: string[] | undefined, tls: 'opportunistic' | 'none' = 'opportunistic'): Promise<SmtpResult> {
  const w = await startDnsWorld({ mailHost: MAIL_HOST, domain: 'company.test', ...(tlsa ? { tlsa } : {}) });
  worlds.push(w);
  const plan = worldPlan(w, { probes: { smtp: { from: 'probe@probes.test', ca_file: certs.caFile, tls } } });
  const r = await smtp({ ip: mtas.new.ip, side: 'new', port: mtas.new.port, mode: 'rcpt' }, smtpSettings(plan), testCtx());
  assert.ok(isCheckResult(r), JSON.stringify(r));
  assert.equal(r.ok, true, JSON.stringify(r));
  return r;
}

describe('smtp check: TLSA records against the presented certificate', () => {
  test('DANE-EE 3 1 1 and 3 0 1, DANE-TA 2 x x and PKIX 1/0 of the real certificate match', async () => {
    const leaf = certs.mailHost.cert;
    for (const rec of [
      tlsaRecordFor(leaf, 3, 1, 1),
      tlsaRecordFor(leaf, 3, 0, 1),
      tlsaRecordFor(leaf, 3, 1, 2),
      tlsaRecordFor(leaf, 3, 0, 0),
      tlsaRecordFor(certs.caPem, 2, 0, 1),
      tlsaRecordFor(certs.caPem, 2, 1, 1),
      tlsaRecordFor(leaf, 1, 1, 1),
      tlsaRecordFor(certs.caPem, 0, 1, 1),
    ]) {
      const r = await session([rec]);
      assert.equal(r.tlsa?.match, true, `${rec.slice(0, 5)} matches: ${r.tlsa?.detail}`);
      assert.equal(r.tlsa?.records, 1);
    }
  });

  test('records for another key do not match; one matching record among others is enough', async () => {
    const other = certs.wrongName.cert;
    const miss = await session([tlsaRecordFor(other, 3, 1, 1), tlsaRecordFor(other, 3, 0, 1), tlsaRecordFor(certs.mailHost.cert, 2, 0, 1)]);
    assert.deepEqual(miss.tlsa, { match: false, records: 3, detail: `no match among 3 TLSA record(s) at _25._tcp.${MAIL_HOST} (3 1 1, 3 0 1, 2 0 1)` });
    // The pre-rollover state: the old key's record plus the new key's record.
    const both = await session([tlsaRecordFor(other, 3, 1, 1), tlsaRecordFor(certs.mailHost.cert, 3, 1, 1)]);
    assert.deepEqual(both.tlsa, { match: true, records: 2, detail: `matches 2 TLSA record(s) at _25._tcp.${MAIL_HOST} (3 1 1)` });
  });

  test('no TLSA records or no TLS: no verdict, no metric; the metric is 1/0 per IP', async () => {
    assert.equal((await session(undefined)).tlsa, undefined);
    assert.equal((await session([tlsaRecordFor(certs.mailHost.cert, 3, 1, 1)], 'none')).tlsa, undefined);
    const good = await session([tlsaRecordFor(certs.mailHost.cert, 3, 1, 1)]);
    const bad = { ...(await session([tlsaRecordFor(certs.wrongName.cert, 3, 1, 1)])), ip: mtas.old.ip, side: 'old' as const };
    const w = worlds[0]!;
    const col = await startTestCollector(worldPlan(w));
    try {
      await col.push(batchOf([good, bad]));
      assert.equal(await col.sample('mailprobe_tlsa_match', { ip: mtas.new.ip, side: 'new' }), 1);
      assert.equal(await col.sample('mailprobe_tlsa_match', { ip: mtas.old.ip, side: 'old' }), 0);
    } finally {
      await col.close();
    }
  });
});
