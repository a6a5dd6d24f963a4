/**
 * `probes.resolvers` entries: plain specs, `{ address, name }`, `{ catalogue: group }` from the
 * built-in catalogue of public resolvers; each problem named at its own path; the catalogue's data.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import { CATALOGUE, CATALOGUE_REGIONS, catalogueResolvers } from '../../config/catalogue.js';
import { ConfigError, validatePlan } from '../../config/load.js';
import { testPlanInput } from '../../bench/lib/plan.js';

const planWith = (resolvers: unknown[]) => {
  const input = testPlanInput();
  return validatePlan({ ...input, probes: { ...input.probes, resolvers } }, 'plan');
};
/** The plan's resolvers as { address, name } (the parsed spec's label, its name or the label). */
const withResolvers = (resolvers: unknown[]) => ({
  probes: { resolvers: planWith(resolvers).probes.resolvers.map((r) => ({ address: r.label, name: r.name ?? r.label })) },
});

const problemsOf = (resolvers: unknown[]): readonly string[] => {
  try {
    withResolvers(resolvers);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('the plan was accepted');
};

test('plain specs, { address, name } and catalogue groups decode to named resolvers, an address listed twice once', () => {
  const plan = withResolvers(['127.0.0.1:5300', { address: '8.8.8.8', name: 'Google (ours)' }, { catalogue: 'google' }, { catalogue: 'china' }]);
  assert.deepEqual(plan.probes.resolvers, [
    { address: '127.0.0.1:5300', name: '127.0.0.1:5300' },
    // Listed before the group: its own name wins, the group's 8.8.8.8 is not asked twice.
    { address: '8.8.8.8', name: 'Google (ours)' },
    { address: '8.8.4.4', name: 'Google #2' },
    { address: '223.5.5.5', name: 'AliDNS' },
    { address: '223.6.6.6', name: 'AliDNS #2' },
    { address: '119.29.29.29', name: 'DNSPod' },
    { address: '114.114.114.114', name: '114DNS' },
    { address: '114.114.115.115', name: '114DNS #2' },
  ]);
  const parsed = planWith([{ address: '8.8.8.8', name: 'Google (ours)' }, '127.0.0.1:5300']).probes.resolvers;
  assert.deepEqual(parsed[0], { kind: 'dns', label: '8.8.8.8', servers: [{ host: '8.8.8.8', port: 53 }], name: 'Google (ours)' });
  assert.equal(parsed[1]?.name, undefined);
  assert.ok(Object.isFrozen(parsed[0]));
});

test('catalogue: global is the anycast operators, IPv4 only unless ipv6: true', () => {
  const v4 = withResolvers([{ catalogue: 'global' }]).probes.resolvers;
  assert.deepEqual(
    [...new Set(v4.map((r) => r.name.replace(/ #\d+$/, '')))],
    ['Google', 'Cloudflare', 'Quad9', 'OpenDNS', 'AdGuard', 'CleanBrowsing', 'Control D'],
  );
  assert.ok(v4.every((r) => isIP(r.address) === 4));
  const both = withResolvers([{ catalogue: 'global', ipv6: true }]).probes.resolvers;
  assert.equal(both.length, v4.length * 2);
  assert.deepEqual(
    both.filter((r) => r.name.startsWith('Cloudflare')),
    [
      { address: '1.1.1.1', name: 'Cloudflare' },
      { address: '1.0.0.1', name: 'Cloudflare #2' },
      { address: '2606:4700:4700::1111', name: 'Cloudflare v6' },
      { address: '2606:4700:4700::1001', name: 'Cloudflare v6 #2' },
    ],
  );
  assert.equal(
    withResolvers([{ catalogue: 'all' }]).probes.resolvers.length,
    CATALOGUE.reduce((n, c) => n + c.ipv4.length, 0),
  );
});

test('each bad entry is named at its own path with its rule', () => {
  assert.deepEqual(
    problemsOf([
      '8.8.8.8',
      { catalogue: 'mars' },
      { address: '8.8.8.8:99999', name: 'x' },
      { address: '1.1.1.1' },
      { address: '1.1.1.1', name: 'x', ttl: 3 },
      42,
    ]),
    [
      `probes.resolvers[1].catalogue: must be all, a region (${CATALOGUE_REGIONS.join(', ')}) or an operator (google, cloudflare, quad9, opendns, adguard, cleanbrowsing, controld, level3, dnswatch, yandex, alidns, dnspod, 114dns)`,
      'probes.resolvers[2].address: port 99999 is out of range 1–65535',
      'probes.resolvers[3].name: is required',
      'probes.resolvers[4].ttl: is not a known key (known: address, name)',
      'probes.resolvers[5]: must be a resolver spec (system, 8.8.8.8, tls://host, https://host/dns-query), { address, name } or { catalogue: group }',
    ],
  );
  assert.deepEqual(
    problemsOf([
      { address: '9.9.9.9', name: 'same' },
      { address: '1.1.1.1', name: 'same' },
    ]),
    ['probes.resolvers: the name "same" is given to 9.9.9.9 and 1.1.1.1; names must be unique'],
  );
  assert.deepEqual(problemsOf([{ catalogue: 'global', ipv6: 'yes' }]), ['probes.resolvers[0].ipv6: must be true or false']);
});

test('the catalogue: ids and names unique, addresses valid for their family and never listed twice, every operator has IPv4', () => {
  const ids = CATALOGUE.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(new Set(CATALOGUE.map((c) => c.name)).size, CATALOGUE.length);
  const all = CATALOGUE.flatMap((c) => [...c.ipv4, ...c.ipv6]);
  assert.equal(new Set(all).size, all.length);
  for (const c of CATALOGUE) {
    assert.ok(c.ipv4.length >= 1, c.id);
    for (const a of c.ipv4) assert.equal(isIP(a), 4, `${c.id} ${a}`);
    for (const a of c.ipv6) assert.equal(isIP(a), 6, `${c.id} ${a}`);
    assert.ok((CATALOGUE_REGIONS as readonly string[]).includes(c.answersFrom));
  }
  // Every region has at least one operator, so every group selects something.
  for (const r of CATALOGUE_REGIONS) assert.ok(catalogueResolvers(r).length > 0, r);
});
