/**
 * `npm run bench:dns-agreement`: do the probe's DNS answers and TTLs match `dig` asked at the
 * same moment? For every lab resolver (honest, ignore-TTL, clamp-TTL, serve-stale), the lab's
 * authoritative server (asked without recursion, like the probe does) and a real unbound in
 * front of the lab zone, through a compressed cutover (TTL 8 s → lowered to 3 s → switch to
 * both → new), once a second: the probe's dns check (probe/checks/dns.ts) and dig for A, AAAA
 * and MX, started together.
 *
 * A TTL may differ by 1 s when the two queries straddle a second boundary of the resolver's
 * countdown, and when they straddle the moment a cache entry expires one sees TTL 0 and the other
 * the refreshed answer; both are counted separately from a real disagreement.
 *
 * Env: BENCH_SECONDS (default 24).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseDnsServer, parseResolverSpec } from '../config/specs.js';
import { startDnsWorld } from '../lab/dns/world.js';
import { dnsCheckSettings, dnsQueries, runDns, type DnsTarget } from '../probe/checks/dns.js';
import type { DnsResult } from '../protocol/results.js';
import { makeCtx, worldPlan } from './lib/dns-support.js';
import { startUnbound } from './lib/unbound.js';
import { fmt, table } from './lib/load.js';
import { requirePeers } from '../scripts/peers.mjs';
import { bareName } from '../protocol/dns-name.js';

requirePeers(['dig', 'unbound']);

const exec = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 24);

interface Dug {
  answers: string[];
  ttl: number | null;
  rcode: string;
}

/**
 * One dig process per resolver for all three questions: spawning is not free on a busy machine
 * and the lab's resolvers share this process's event loop.
 */
async function dig(hostPort: string, questions: readonly { name: string; type: string }[], recurse: boolean): Promise<Map<string, Dug>> {
  const { host, port } = parseDnsServer(hostPort);
  const args = [`@${host}`, '-p', String(port), recurse ? '+rec' : '+norec', '+tries=1', '+time=2', '+noall', '+answer', '+comments', '+question'];
  for (const q of questions) args.push(q.name, q.type);
  let stdout: string;
  try {
    ({ stdout } = await exec('dig', args));
  } catch (e) {
    // dig exits 9 when a question got no reply; the others are still in its output.
    stdout = (e as { stdout?: string }).stdout ?? '';
  }
  const out = new Map<string, Dug>();
  for (const block of stdout.split(';; Got answer:').slice(1)) {
    const rcode = /status: ([A-Z]+)/.exec(block)?.[1] ?? '?';
    const q = /QUESTION SECTION:\n;(\S+)\s+IN\s+(\S+)/.exec(block);
    if (!q?.[1] || !q[2]) continue;
    const type = q[2];
    const answers: string[] = [];
    let ttl: number | null = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(';') || line.trim() === '') continue;
      const f = line.trim().split(/\s+/);
      if (f[3] !== type) continue;
      const t = Number(f[1]);
      ttl = ttl === null ? t : Math.min(ttl, t);
      answers.push(type === 'MX' ? `${f[4]} ${bareName(f[5] ?? '')}` : bareName(f[4] ?? ''));
    }
    out.set(`${bareName(q[1])} ${type}`, { answers: answers.sort(), ttl, rcode });
  }
  return out;
}

async function main(): Promise<void> {
  const started = Date.now();
  process.stdout.write(`bench:dns-agreement — probe dns check vs dig, ${SECONDS} s of a compressed cutover, once a second\n`);
  const w = await startDnsWorld({
    initial: { ttl: 8, serve: 'old' },
    timeline: [
      { at: 6_000, ttl: 3, label: 'lower TTL' },
      { at: 12_000, serve: 'both', label: 'overlap' },
      { at: 17_000, serve: 'new', label: 'switch' },
    ],
  });
  const unbound = await startUnbound({ upstream: { host: w.auth.host, port: w.auth.port }, zones: ['company.test'], probeName: 'company.test' });
  try {
    const plan = worldPlan(w);
    const queries = dnsQueries(dnsCheckSettings(plan));
    const ctx = makeCtx();
    const targets: { name: string; address: string; target: DnsTarget; recurse: boolean }[] = [
      { name: 'lab honest', address: w.resolvers.honest.address, target: { kind: 'resolver', resolver: w.resolvers.honest.address, queries }, recurse: true },
      {
        name: 'lab ignore-TTL',
        address: w.resolvers.ignore.address,
        target: { kind: 'resolver', resolver: w.resolvers.ignore.address, queries },
        recurse: true,
      },
      { name: 'lab clamp-TTL', address: w.resolvers.clamp.address, target: { kind: 'resolver', resolver: w.resolvers.clamp.address, queries }, recurse: true },
      {
        name: 'lab serve-stale',
        address: w.resolvers.stale.address,
        target: { kind: 'resolver', resolver: w.resolvers.stale.address, queries },
        recurse: true,
      },
      { name: 'lab authoritative', address: w.auth.address, target: { kind: 'authoritative', servers: [], queries }, recurse: false },
      { name: 'unbound (Debian)', address: unbound.address, target: { kind: 'resolver', resolver: unbound.address, queries }, recurse: true },
    ];
    // unbound is not in the plan's resolvers: every target's resolver is known to the settings.
    const s = { ...dnsCheckSettings(plan), resolvers: new Map(targets.map((t) => parseResolverSpec(t.address)).map((r) => [r.label, r])) };
    const stats = new Map(targets.map((t) => [t.name, { compared: 0, same: 0, ttlOffByOne: 0, atExpiry: 0, differ: 0, examples: [] as string[] }]));
    const end = Date.now() + SECONDS * 1000;
    while (Date.now() < end) {
      const tick = Date.now();
      const questions = (['A', 'AAAA', 'MX'] as const).map((type) => ({ name: type === 'MX' ? 'company.test' : 'mail.company.test', type }));
      // Every dig is spawned before any probe query starts: spawning blocks this event loop for
      // a moment, and a probe query timed across that block would time out unfairly.
      const digs = targets.map((t) => dig(t.address, questions, t.recurse));
      await new Promise((r) => setImmediate(r));
      await Promise.all(
        targets.map(async (t, k) => {
          const st = stats.get(t.name);
          if (!st) return;
          const [dug, probe] = await Promise.all([digs[k] ?? dig(t.address, questions, t.recurse), runDns(t.target, s, ctx) as Promise<DnsResult[]>]);
          questions.forEach(({ name, type }) => {
            const p = probe.find((r) => r.qtype === type);
            const d = dug.get(`${name} ${type}`) ?? { answers: [], ttl: null, rcode: 'no reply' };
            if (!p) return;
            st.compared++;
            const pa = [...p.answers].map(bareName).sort();
            const sameAnswers = p.ok && d.rcode === p.rcode && JSON.stringify(pa) === JSON.stringify(d.answers);
            const dt = p.ttl === null || d.ttl === null ? (p.ttl === d.ttl ? 0 : Number.POSITIVE_INFINITY) : Math.abs(p.ttl - d.ttl);
            if (sameAnswers && dt === 0) st.same++;
            else if (sameAnswers && dt === 1) st.ttlOffByOne++;
            // One of the two got the cache's last answer (TTL 0), the other the refreshed one.
            else if (sameAnswers && (p.ttl === 0 || d.ttl === 0)) st.atExpiry++;
            else {
              st.differ++;
              if (st.examples.length < 3)
                st.examples.push(
                  `t+${((tick - started) / 1000).toFixed(0)}s ${type}: probe ${p.ok ? p.rcode : `${p.code ?? ''} ${p.message ?? ''}`} [${pa.join(',')}] ttl ${p.ttl} vs dig ${d.rcode} [${d.answers.join(',')}] ttl ${d.ttl}`,
                );
            }
          });
        }),
      );
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
    }
    const rows = targets.map((t) => {
      const st = stats.get(t.name) ?? { compared: 0, same: 0, ttlOffByOne: 0, atExpiry: 0, differ: 0, examples: [] };
      return [
        t.name,
        String(st.compared),
        String(st.same),
        String(st.ttlOffByOne),
        String(st.atExpiry),
        String(st.differ),
        fmt((100 * (st.same + st.ttlOffByOne + st.atExpiry)) / Math.max(1, st.compared), 1),
      ];
    });
    process.stdout.write(`${table(['resolver', 'answers compared', 'identical', 'TTL ±1 s', 'at expiry (0 vs refreshed)', 'differ', 'agree %'], rows)}\n`);
    for (const t of targets) for (const e of stats.get(t.name)?.examples ?? []) process.stdout.write(`  ${t.name}: ${e}\n`);
    const all = [...stats.values()].reduce((a, b) => ({ compared: a.compared + b.compared, differ: a.differ + b.differ }), { compared: 0, differ: 0 });
    process.stdout.write(
      `total: ${all.compared} answers compared, ${all.differ} differ (${fmt((100 * (all.compared - all.differ)) / Math.max(1, all.compared), 2)} % agree)\n`,
    );
  } finally {
    await unbound.close();
    await w.close();
  }
  process.stdout.write(`done in ${fmt((Date.now() - started) / 1000, 0)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:dns-agreement failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
