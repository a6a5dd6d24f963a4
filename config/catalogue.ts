/**
 * A built-in catalogue of well-known public resolvers, so a plan can ask "the big public resolvers"
 * (`- catalogue: global`) or one operator (`- catalogue: quad9`) without copying addresses, and
 * every resolver gets a name an operator recognises ("Google", not "8.8.8.8") on panels, in
 * alerts and in the lab view.
 *
 * Addresses are the operators' published unfiltered (or default, where no unfiltered service
 * exists) plain-DNS addresses, IPv4 and IPv6. `answersFrom` says where the service answers from:
 * `global` for anycast networks with sites on every continent, else the region its sites are in;
 * a probe asking a regional service from far away still gets answers, only slower, and its cache
 * is the one that region's users share. Groups select by that region; `all` selects everything.
 */

export const CATALOGUE_REGIONS = ['global', 'europe', 'russia', 'china', 'north-america'] as const;
export type CatalogueRegion = (typeof CATALOGUE_REGIONS)[number];

export interface CatalogueResolver {
  /** Stable id, usable as `catalogue: <id>`. */
  readonly id: string;
  readonly operator: string;
  /** Short name used for the resolver_name label (with " #2", " v6" for further addresses). */
  readonly name: string;
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  readonly answersFrom: CatalogueRegion;
  /** What an operator should know (filtering, documentation status). */
  readonly note?: string;
}

export const CATALOGUE: readonly CatalogueResolver[] = [
  {
    id: 'google',
    operator: 'Google',
    name: 'Google',
    ipv4: ['8.8.8.8', '8.8.4.4'],
    ipv6: ['2001:4860:4860::8888', '2001:4860:4860::8844'],
    answersFrom: 'global',
  },
  {
    id: 'cloudflare',
    operator: 'Cloudflare',
    name: 'Cloudflare',
    ipv4: ['1.1.1.1', '1.0.0.1'],
    ipv6: ['2606:4700:4700::1111', '2606:4700:4700::1001'],
    answersFrom: 'global',
  },
  {
    id: 'quad9',
    operator: 'Quad9 Foundation',
    name: 'Quad9',
    ipv4: ['9.9.9.9', '149.112.112.112'],
    ipv6: ['2620:fe::fe', '2620:fe::9'],
    answersFrom: 'global',
    note: 'the default service blocks malicious domains (9.9.9.10 is the unsecured one)',
  },
  {
    id: 'opendns',
    operator: 'Cisco',
    name: 'OpenDNS',
    ipv4: ['208.67.222.222', '208.67.220.220'],
    ipv6: ['2620:119:35::35', '2620:119:53::53'],
    answersFrom: 'global',
  },
  {
    id: 'adguard',
    operator: 'AdGuard',
    name: 'AdGuard',
    ipv4: ['94.140.14.140', '94.140.14.141'],
    ipv6: ['2a10:50c0::1:ff', '2a10:50c0::2:ff'],
    answersFrom: 'global',
    note: 'the non-filtering service (the default 94.140.14.14 blocks ads and trackers)',
  },
  {
    id: 'cleanbrowsing',
    operator: 'CleanBrowsing',
    name: 'CleanBrowsing',
    ipv4: ['185.228.168.9', '185.228.169.9'],
    ipv6: ['2a0d:2a00:1::2', '2a0d:2a00:2::2'],
    answersFrom: 'global',
    note: 'the security filter (blocks phishing and malware domains)',
  },
  {
    id: 'controld',
    operator: 'Control D',
    name: 'Control D',
    ipv4: ['76.76.2.0', '76.76.10.0'],
    ipv6: ['2606:1a40::', '2606:1a40:1::'],
    answersFrom: 'global',
    note: 'the free unfiltered profile',
  },
  {
    id: 'level3',
    operator: 'Lumen (Level3)',
    name: 'Level3',
    ipv4: ['4.2.2.1', '4.2.2.2'],
    ipv6: [],
    answersFrom: 'north-america',
    note: 'widely used but not documented by Lumen as a public service; may be rate-limited',
  },
  {
    id: 'dnswatch',
    operator: 'DNS.WATCH',
    name: 'DNS.WATCH',
    ipv4: ['84.200.69.80', '84.200.70.40'],
    ipv6: ['2001:1608:10:25::1c04:b12f', '2001:1608:10:25::9249:d69b'],
    answersFrom: 'europe',
  },
  {
    id: 'yandex',
    operator: 'Yandex',
    name: 'Yandex',
    ipv4: ['77.88.8.8', '77.88.8.1'],
    ipv6: ['2a02:6b8::feed:0ff', '2a02:6b8:0:1::feed:0ff'],
    answersFrom: 'russia',
    note: 'the basic (unfiltered) service',
  },
  {
    id: 'alidns',
    operator: 'Alibaba Cloud',
    name: 'AliDNS',
    ipv4: ['223.5.5.5', '223.6.6.6'],
    ipv6: ['2400:3200::1', '2400:3200:baba::1'],
    answersFrom: 'china',
  },
  { id: 'dnspod', operator: 'Tencent', name: 'DNSPod', ipv4: ['119.29.29.29'], ipv6: ['2402:4e00::'], answersFrom: 'china' },
  { id: '114dns', operator: '114DNS', name: '114DNS', ipv4: ['114.114.114.114', '114.114.115.115'], ipv6: [], answersFrom: 'china' },
];

/** What `catalogue:` accepts: `all`, a region, or one operator's id. */
export const CATALOGUE_SELECTORS: readonly string[] = ['all', ...CATALOGUE_REGIONS, ...CATALOGUE.map((c) => c.id)];

export interface NamedResolver {
  /** The resolver spec (`8.8.8.8`, `tls://host`, `https://host/dns-query`, `system` …). */
  readonly address: string;
  /** Shown on panels, in alerts and in the lab view (the `resolver_name` label). Default: the address. */
  readonly name: string;
}

/** The resolvers a `catalogue:` entry selects, IPv6 addresses only when asked (probes without IPv6 would only time out). */
export function catalogueResolvers(selector: string, ipv6 = false): NamedResolver[] {
  const picked = CATALOGUE.filter((c) => selector === 'all' || c.answersFrom === selector || c.id === selector);
  return picked.flatMap((c) => [
    ...c.ipv4.map((address, i) => ({ address, name: i === 0 ? c.name : `${c.name} #${i + 1}` })),
    ...(ipv6 ? c.ipv6.map((address, i) => ({ address, name: i === 0 ? `${c.name} v6` : `${c.name} v6 #${i + 1}` })) : []),
  ]);
}

/** A `probes.resolvers` entry as written in the plan. */
export type ResolverEntryInput = string | { address: string; name: string } | { catalogue: string; ipv6?: boolean };

/**
 * Entries → named resolvers, catalogue groups expanded in place. An address listed twice is asked
 * once, under the first entry's name (so an explicit `{ address: 8.8.8.8, name: … }` before a
 * `catalogue:` group keeps its name).
 */
export function expandResolvers(entries: readonly ResolverEntryInput[]): NamedResolver[] {
  const out: NamedResolver[] = [];
  const seen = new Set<string>();
  const add = (r: NamedResolver) => {
    const key = r.address.trim();
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ address: key, name: r.name });
  };
  for (const e of entries) {
    if (typeof e === 'string') add({ address: e, name: e.trim() });
    else if ('catalogue' in e) catalogueResolvers(e.catalogue, e.ipv6 ?? false).forEach(add);
    else add({ address: e.address, name: e.name });
  }
  return out;
}
