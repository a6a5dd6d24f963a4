/**
 * A real Postfix (Debian's package, found by scripts/peers.mjs) on a loopback address for tests, run from its own
 * config and queue directory in a temp dir (`postfix -c DIR start`), so it never touches the
 * system instance. It accepts mail for the relay domains and routes it with a transport map
 * (e.g. the round-trip address to the sink, everything else to `discard:`), sending from its
 * own address (smtp_bind_address). Stop it with `stop()`.
 *
 * It starts like `postfix -c DIR start` minus the slow consistency checks: the queue layout of
 * postfix-files, then `master -c DIR -w`; `stop()` sends the master SIGTERM as `postfix stop` does.
 *
 * Needs root (Postfix's master runs as root and drops to mail_owner `postfix`, which the Debian
 * package creates): a test file calls `postfixUnavailable()` and fails each test with its reason.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitListening } from '../../lab/ports.js';
import { peer } from '../../scripts/peers.mjs';

const run = promisify(execFile);
const POSTFIX = peer('postfix');
const MASTER = '/usr/lib/postfix/sbin/master';
const POSTMAP = '/usr/sbin/postmap';

export interface PostfixOptions {
  /** Loopback address it listens on and sends from. */
  ip: string;
  /** myhostname: greeting, EHLO and the HELO it sends. */
  hostname: string;
  /** Domains it accepts mail for (relay_domains). */
  relayDomains: string[];
  /** Transport map entries: address or domain → transport (`smtp:[127.0.0.1]:2525`, `discard:`). */
  transport: Record<string, string>;
  /** Certificate for STARTTLS (smtpd_tls_security_level = may). */
  tls?: { cert: string; key: string };
  /**
   * Lines appended to main.cf (they win over the ones above), with `/etc/postfix/` meaning the
   * instance's directory: e.g. a README's `transport_maps = hash:/etc/postfix/transport`. A
   * `hash:` map of the transport file is built with postmap.
   */
  mainCf?: string[];
  /** Extra lines of the transport file, after the `transport` entries (same `/etc/postfix/` rule). */
  transportLines?: string[];
}

export interface TestPostfix {
  ip: string;
  port: number;
  dir: string;
  /** The maillog so far (for assertions and debugging). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Why Postfix cannot run here (not root), or null when it can. */
export function postfixUnavailable(): string | null {
  if (process.getuid?.() === 0) return null;
  return "the Postfix tests need root: Postfix's master runs as root and drops to the postfix user (run npm test as root)";
}

const MASTER_CF = (ip: string, port: number) =>
  [
    `${ip}:${port} inet n - n - - smtpd`,
    'pickup    unix  n - n 60 1 pickup',
    'cleanup   unix  n - n - 0 cleanup',
    'qmgr      unix  n - n 300 1 qmgr',
    'tlsmgr    unix  - - n 1000? 1 tlsmgr',
    'rewrite   unix  - - n - - trivial-rewrite',
    'bounce    unix  - - n - 0 bounce',
    'defer     unix  - - n - 0 bounce',
    'trace     unix  - - n - 0 bounce',
    'verify    unix  - - n - 1 verify',
    'flush     unix  n - n 1000? 0 flush',
    'proxymap  unix  - - n - - proxymap',
    'smtp      unix  - - n - - smtp',
    'relay     unix  - - n - - smtp',
    'showq     unix  n - n - - showq',
    'error     unix  - - n - - error',
    'retry     unix  - - n - - error',
    'discard   unix  - - n - - discard',
    'anvil     unix  - - n - 1 anvil',
    'scache    unix  - - n - 1 scache',
    'postlog   unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n');

export async function startPostfix(opts: PostfixOptions): Promise<TestPostfix> {
  const dir = await mkdtemp(join(tmpdir(), 'mailprobe-postfix-'));
  // The postfix user must reach the queue below it.
  await chmod(dir, 0o755);
  const port = await freePort(opts.ip);
  const maillog = join(dir, 'maillog');
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    'command_directory = /usr/sbin',
    'daemon_directory = /usr/lib/postfix/sbin',
    'shlib_directory = /usr/lib/postfix',
    'meta_directory = /etc/postfix',
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${opts.hostname}`,
    'myorigin = $myhostname',
    'mydestination =',
    // Only 127.0.0.1 is an interface address; the smtpd service in master.cf binds opts.ip itself.
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `relay_domains = ${opts.relayDomains.join(', ')}`,
    // Unless the caller's main.cf lines name the transport maps themselves.
    ...((opts.mainCf ?? []).some((l) => /^\s*transport_maps\s*=/.test(l)) ? [] : [`transport_maps = texthash:${join(dir, 'transport')}`]),
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    `smtp_bind_address = ${opts.ip}`,
    'smtp_helo_name = $myhostname',
    'smtpd_banner = $myhostname ESMTP mailprobe test postfix',
    `maillog_file = ${maillog}`,
    `maillog_file_prefixes = ${dir}`,
    'alias_maps =',
    'alias_database =',
    'local_recipient_maps =',
    'biff = no',
    'smtp_tls_security_level = may',
    'smtp_tls_loglevel = 0',
    'smtpd_peername_lookup = no',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    'smtp_connect_timeout = 5s',
    ...(opts.tls ? [`smtpd_tls_cert_file = ${join(dir, 'tls.crt')}`, `smtpd_tls_key_file = ${join(dir, 'tls.key')}`, 'smtpd_tls_security_level = may'] : []),
    ...(opts.mainCf ?? []).map((l) => l.replaceAll('/etc/postfix/', `${dir}/`)),
    '',
  ].join('\n');
  await writeFile(join(dir, 'main.cf'), main);
  await writeFile(join(dir, 'master.cf'), MASTER_CF(opts.ip, port));
  const transportLines = [
    ...Object.entries(opts.transport).map(([k, v]) => `${k} ${v}`),
    ...(opts.transportLines ?? []).map((l) => l.replaceAll('/etc/postfix/', `${dir}/`)),
  ];
  await writeFile(join(dir, 'transport'), `${transportLines.join('\n')}\n`);
  if (opts.tls) {
    await writeFile(join(dir, 'tls.crt'), opts.tls.cert);
    await writeFile(join(dir, 'tls.key'), opts.tls.key, { mode: 0o600 });
  }
  const log = async () => readFile(maillog, 'utf8').catch(() => '');
  try {
    // `postfix start` spends ~7 s in its consistency checks (postfix check); the queue layout it
    // would create is made here and master started directly, as postfix-script does after them.
    await makeQueue(dir);
    if ((opts.mainCf ?? []).some((l) => l.includes(`hash:/etc/postfix/transport`)))
      await run(POSTMAP, ['-c', dir, `hash:${join(dir, 'transport')}`], { timeout: 30_000 });
    await run(MASTER, ['-c', dir, '-w'], { timeout: 30_000, env: { ...process.env, MAIL_CONFIG: dir } });
    await waitListening(opts.ip, port, 10_000, 'postfix');
  } catch (e) {
    await run(POSTFIX, ['-c', dir, 'abort']).catch(() => undefined);
    const text = await log();
    await rm(dir, { recursive: true, force: true });
    const err = e as Error & { stderr?: string };
    throw new Error(`postfix did not start: ${err.message} ${err.stderr ?? ''}\n${text}`);
  }
  return {
    ip: opts.ip,
    port,
    dir,
    log,
    async stop() {
      // What `postfix stop` does (SIGTERM to the master of this instance), without its script.
      const pid = Number((await readFile(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').catch(() => '')).trim());
      if (pid > 0 && isAlive(pid)) {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 25));
      }
      if (pid > 0 && isAlive(pid)) await run(POSTFIX, ['-c', dir, 'abort']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function idOf(file: '/etc/passwd' | '/etc/group', name: string): Promise<number> {
  const line = (await readFile(file, 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
  const n = Number(line?.split(':')[2]);
  if (!line || !Number.isInteger(n)) throw new Error(`${name} is not in ${file} (is Debian's postfix package installed?)`);
  return n;
}

/** The queue and data directories with the owners and modes of /etc/postfix/postfix-files. */
async function makeQueue(dir: string): Promise<void> {
  const postfix = await idOf('/etc/passwd', 'postfix');
  const postfixGid = await idOf('/etc/group', 'postfix');
  const postdrop = await idOf('/etc/group', 'postdrop');
  const q = join(dir, 'queue');
  const dirs: [string, number, number, number][] = [
    ...['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'private', 'saved', 'trace'].map(
      (d): [string, number, number, number] => [join(q, d), postfix, 0, 0o700],
    ),
    [join(q, 'maildrop'), postfix, postdrop, 0o730],
    [join(q, 'public'), postfix, postdrop, 0o710],
    [join(q, 'pid'), 0, 0, 0o755],
    [join(dir, 'data'), postfix, postfixGid, 0o700],
  ];
  for (const [path, uid, gid, mode] of dirs) {
    await mkdir(path, { recursive: true });
    await chown(path, uid, gid);
    await chmod(path, mode);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
