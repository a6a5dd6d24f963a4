// System peers from Debian's packages, and the one lookup of their binaries that scripts, tests
// and benchmarks share (tests and bench/ import it from here; lab/ code, which ships in dist/,
// has its own lab/which.ts). Plain JavaScript: npm test's bootstrap runs it on any system Node.
//   TEST_PEERS   what the tests talk to; `npm test` installs them (as root) or names the command
//   BENCH_PEERS  what only bench/ needs on top: `npm run bench:peers`; each bench checks and says
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, rmSync } from 'node:fs';

/** binary → Debian package, for the tests. */
export const TEST_PEERS = {
  promtool: 'prometheus',
  prometheus: 'prometheus',
  amtool: 'prometheus-alertmanager',
  'prometheus-alertmanager': 'prometheus-alertmanager',
  unbound: 'unbound',
  postfix: 'postfix',
  swaks: 'swaks',
  openssl: 'openssl',
  python3: 'python3',
  // The status page and report tests look at both in a real browser (playwright-core drives it).
  chromium: 'chromium',
  // test/deploy/kubernetes.test.ts builds every kustomization with `kubectl kustomize` (kustomize
  // v5: Debian's own kubernetes-client is too old for `labels:`; the machine image ships kubectl).
  kubectl: 'kubectl',
  // The inbox check's IMAP server (lab/dovecot.ts): Dovecot with IMAP, LMTP and Sieve; the
  // helpers are not on PATH, so they are named by their path.
  dovecot: 'dovecot-core',
  '/usr/lib/dovecot/imap': 'dovecot-imapd',
  '/usr/lib/dovecot/lmtp': 'dovecot-lmtpd',
  '/usr/lib/dovecot/modules/lib90_sieve_plugin.so': 'dovecot-sieve',
  // Remote write into a real VictoriaMetrics, its rules in vmalert (test/e2e/victoria-metrics.test.ts).
  'victoria-metrics': 'victoria-metrics',
  vmalert: 'victoria-metrics',
};

/** binary → Debian package, that only the benchmarks need (besides the test peers). */
export const BENCH_PEERS = {
  'prometheus-pushgateway': 'prometheus-pushgateway',
  'prometheus-blackbox-exporter': 'prometheus-blackbox-exporter',
  dig: 'bind9-dnsutils',
  ip: 'iproute2',
  // bench:mta-log parses the same Postfix log with pflogsumm.
  pflogsumm: 'pflogsumm',
  taskset: 'util-linux',
  // bench:ingest's load generator (bench/lib/wrk.ts): C, so its own pauses are not the server's latency.
  wrk: 'wrk',
  // bench:scrape times a scrape to its last byte with curl (no decoding, no garbage collector of its own).
  curl: 'curl',
};

const ALL = { ...TEST_PEERS, ...BENCH_PEERS };
const DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The path of an executable on PATH or in the usual (s)bin folders (not always on a user's PATH), or null; a path is taken as is. */
export function which(bin) {
  if (bin.startsWith('/')) return existsSync(bin) ? bin : null;
  for (const d of [...(process.env.PATH ?? '').split(':'), ...DIRS]) {
    if (d && existsSync(`${d}/${bin}`)) return `${d}/${bin}`;
  }
  return null;
}

function installHint(bins) {
  const bench = bins.some((b) => b in BENCH_PEERS);
  return bench ? 'npm run bench:peers' : 'npm test (as root), or node scripts/peers.mjs --install';
}

/** The path of a peer's binary; throws naming its Debian package and the install command when it is missing. */
export function peer(bin) {
  const path = which(bin);
  if (path !== null) return path;
  const pkg = ALL[bin] ?? bin;
  throw new Error(`${bin} is not installed (Debian package ${pkg}); install it with: ${installHint([bin])}`);
}

/** The binaries of `peers` (a binary → package map) that are missing. */
export function peersMissing(peers = TEST_PEERS) {
  return Object.keys(peers).filter((b) => which(b) === null);
}

/** For a benchmark: exits 1 naming what is missing and how to install it, unless every binary is there. */
export function requirePeers(bins) {
  const missing = bins.filter((b) => which(b) === null);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((b) => ALL[b] ?? b))].sort();
  console.error(`mailprobe: this benchmark needs ${missing.join(', ')} (Debian packages: ${pkgs.join(' ')}); install with: ${installHint(missing)}`);
  process.exit(1);
}

/** Installs the packages for the missing binaries when we are root with apt; else says how. */
export function installPeers(missing, what = 'tests') {
  const pkgs = [...new Set(missing.map((b) => ALL[b] ?? b))].sort();
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || which('apt-get') === null) {
    console.error(`mailprobe: the ${what} need ${missing.join(', ')} (Debian packages: ${pkgs.join(' ')}). Install them with:\n  sudo sh -c '${cmd}'`);
    return false;
  }
  console.error(`mailprobe: installing the ${what}' peers: ${pkgs.join(' ')}`);
  // Packages such as unbound and postfix start their daemons on install; the tests start
  // their own on loopback, so keep the system ones from starting (policy-rc.d: 101 = deny).
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
    return r.status === 0;
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

// `node scripts/peers.mjs --install [--bench]`: install what the tests (and the benchmarks) need, or say how.
if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--install')) {
  const bench = process.argv.includes('--bench');
  const peers = bench ? ALL : TEST_PEERS;
  const what = bench ? 'benchmarks' : 'tests';
  const missing = peersMissing(peers);
  if (missing.length === 0) console.error(`mailprobe: the ${what}' peers are present`);
  else if (!installPeers(missing, what) || peersMissing(peers).length > 0) process.exit(1);
}
