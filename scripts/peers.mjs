// System peers the tests (and the lab, where present) use, from Debian's packages.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, rmSync } from 'node:fs';

/** binary → Debian package */
export const PEERS = {
  promtool: 'prometheus',
  prometheus: 'prometheus',
  'prometheus-pushgateway': 'prometheus-pushgateway',
  'prometheus-blackbox-exporter': 'prometheus-blackbox-exporter',
  amtool: 'prometheus-alertmanager',
  unbound: 'unbound',
  postfix: 'postfix',
  swaks: 'swaks',
  dig: 'bind9-dnsutils',
  ip: 'iproute2',
  openssl: 'openssl',
};

const DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function which(bin) {
  for (const d of [...(process.env.PATH ?? '').split(':'), ...DIRS]) {
    if (d && existsSync(`${d}/${bin}`)) return `${d}/${bin}`;
  }
  return null;
}

export function peersMissing() {
  return Object.keys(PEERS).filter((b) => which(b) === null);
}

/** Installs the packages for the missing binaries when we are root with apt; else says how. */
export function installPeers(missing) {
  const pkgs = [...new Set(missing.map((b) => PEERS[b]))].sort();
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || which('apt-get') === null) {
    console.error(`mailprobe: the tests need ${missing.join(', ')} (Debian packages: ${pkgs.join(' ')}). Install them with:\n  sudo sh -c '${cmd}'`);
    return false;
  }
  console.error(`mailprobe: installing test peers: ${pkgs.join(' ')}`);
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

// `node scripts/peers.mjs --install`: install what is missing (CI), or say how.
if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--install')) {
  const missing = peersMissing();
  if (missing.length === 0) console.error('mailprobe: test peers present');
  else if (!installPeers(missing) || peersMissing().length > 0) process.exit(1);
}
