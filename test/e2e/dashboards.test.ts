/**
 * Every dashboard panel against the lab cutover: the whole lab (DNS world, old and new MTAs, the
 * sink, a collector, three probes) runs a 60 s cutover with a real Prometheus scraping the
 * collector, and every expression of every panel (Grafana variables substituted as a dashboard
 * with "All" selected sends them) is evaluated every 2 s from the start to the end of the
 * timeline. A panel passes when it returned data at least once — some only have data at their
 * moment (the switch, a resolver still serving the old IP, the old server off) — and every panel
 * that needs no setup beyond the lab (optional rows: remote write, probes scraped directly) must.
 *
 * A clean cutover has no failures, so the panels that show failures get the faults a real one
 * meets: a probe with a wrong token (rejected pushes), the authoritative server failing for a few
 * seconds (failed lookups), the new server dropping round-trip mail for a few seconds (lost messages),
 * the lab blocklist refusing queries for a few seconds (blocklist lookups that give no answer).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { request } from 'undici';
import { panelQueries, substituteVariables, type PanelQuery } from '../../grafana/index.js';
import { LAB_DNSBL, LAB_MAIL_HOST, labTimeline, startLabCutover } from '../../lab/cutover.js';
import { RESULTS_PATH } from '../../protocol/wire.js';

const DURATION_MS = 60_000;

test('every dashboard panel returns data from the real Prometheus during the lab cutover', { timeout: 120_000 }, async () => {
  const lab = await startLabCutover({ durationMs: DURATION_MS, collectorListen: '127.0.0.1:0', prometheus: true, logger: pino({ level: 'warn' }) });
  try {
    const prom = lab.prometheus;
    assert.ok(prom, 'the lab runs a Prometheus');
    const t = labTimeline(DURATION_MS);
    const at = (ms: number) => sleep(Math.max(0, lab.startedAt + ms - Date.now()));
    const faults = (async () => {
      // A probe with a wrong token: the collector rejects its pushes.
      const bad = await request(`${lab.collectorUrl}${RESULTS_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-lab-token' },
        body: '{}',
      });
      await bad.body.dump();
      // The lab blocklist refuses queries (127.255.255.254) for a while: blocklist lookups fail.
      lab.dns.auth.updateZone({ dnsbl: [{ zone: LAB_DNSBL, listed: {}, refuse: true }] });
      await at(t.lowerAt + 6_000);
      lab.dns.auth.updateZone({ dnsbl: [{ zone: LAB_DNSBL, listed: {} }] });
      assert.equal(bad.statusCode, 401);
      // After the switch: the new server loses round-trip mail for a while.
      await at(t.switchAt + 2_000);
      await lab.mtas.setFault('new', { kind: 'relay-drop' });
      await at(t.switchAt + 8_000);
      await lab.mtas.setFault('new', null);
      // Between raising the TTL and turning the old server off: the authoritative server fails.
      await at(t.raiseAt + 2_000);
      lab.dns.auth.fault({ kind: 'servfail' }, { names: [LAB_MAIL_HOST] });
      await at(t.raiseAt + 6_000);
      lab.dns.auth.fault(null);
    })();

    const queries = panelQueries().filter((q) => q.optional === undefined);
    assert.ok(queries.length >= 40, `only ${queries.length} panel queries`);
    const firstData = new Map<PanelQuery, number>();
    const key = (q: PanelQuery) => `${q.dashboard} / ${q.panel} / ${q.refId}`;
    while (Date.now() < lab.endsAt + 1_000) {
      const round = Date.now();
      for (const q of queries) {
        if (firstData.has(q)) continue;
        const d = await prom.query(substituteVariables(q.expr)); // throws on a query Prometheus refuses
        const n = d.resultType === 'vector' || d.resultType === 'matrix' ? d.result.length : 1;
        if (n > 0) firstData.set(q, (Date.now() - lab.startedAt) / 1000);
      }
      if (firstData.size === queries.length) break;
      await sleep(Math.max(0, 2_000 - (Date.now() - round)));
    }
    await faults;

    const rows = queries.map((q) => ({ panel: key(q), 'data from (s)': firstData.has(q) ? Number(firstData.get(q)?.toFixed(1)) : 'never' }));
    console.log(`# ${firstData.size} of ${queries.length} panel queries returned data during a ${DURATION_MS / 1000} s lab cutover`);
    console.table(rows);
    assert.deepEqual(
      queries.filter((q) => !firstData.has(q)).map((q) => `${key(q)}: ${q.expr}`),
      [],
      'panel queries that never returned data',
    );
  } finally {
    await lab.stop();
  }
});
