/**
 * A real Dovecot (Debian's dovecot-imapd, dovecot-lmtpd, dovecot-sieve) for the lab and the
 * inbox check's tests: IMAP and LMTP on loopback, run from its own config in a temp dir, never
 * touching the system instance. It runs unprivileged: as the calling user, or as `nobody` when
 * called as root (the temp dir is handed to that user), with one static mail user id.
 *
 * Users log in with plain passwords from a passwd file; mail arrives over LMTP (from the lab
 * receiver or a real Postfix) and a global Sieve script files it: a message the receiver marked
 * `X-Spam-Flag: YES` goes to `Junk` (flagged `\Junk`), one marked `X-Lab-Folder: Other` to
 * `Other` — the way a spam filter in front of Sieve does it.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitListening } from './ports.js';
import { spawnTied } from './tied.js';
import { which } from './which.js';

export interface DovecotUser {
  user: string;
  pass: string;
}

export interface LabDovecot {
  host: string;
  imapPort: number;
  lmtpPort: number;
  dir: string;
  /** dovecot.log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Why Dovecot cannot run here (not installed), or null. */
export function dovecotUnavailable(): string | null {
  const missing = ['dovecot', '/usr/lib/dovecot/imap', '/usr/lib/dovecot/lmtp', '/usr/lib/dovecot/modules/lib90_sieve_plugin.so'].filter((b) =>
    b.startsWith('/') ? !existsSync(b) : which(b) === null,
  );
  return missing.length === 0
    ? null
    : `Dovecot is not installed (missing ${missing.join(', ')}; Debian packages dovecot-imapd dovecot-lmtpd dovecot-sieve: npm test as root installs them)`;
}

const SIEVE = `require ["fileinto", "mailbox"];
if header :is "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }
if header :is "X-Lab-Folder" "Other" { fileinto :create "Other"; stop; }
`;

export async function startDovecot(opts: { users: DovecotUser[]; host?: string }): Promise<LabDovecot> {
  const why = dovecotUnavailable();
  if (why) throw new Error(why);
  const host = opts.host ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'mailprobe-dovecot-'));
  const root = process.getuid?.() === 0;
  const uid = root ? 65534 : (process.getuid?.() ?? 65534);
  const gid = root ? 65534 : (process.getgid?.() ?? 65534);
  const userName = root ? 'nobody' : (process.env.USER ?? 'nobody');
  const [imapPort, lmtpPort] = [await freePort(host), await freePort(host)];
  const conf = `# mailprobe lab Dovecot (generated)
protocols = imap lmtp
listen = ${host}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
info_log_path = ${dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused login answers at once (the default waits 2 s).
auth_failure_delay = 0
default_login_user = ${userName}
default_internal_user = ${userName}
default_internal_group = ${root ? 'nogroup' : userName}
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${uid} gid=${gid} home=${dir}/home/%u
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    address = ${host}
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = ${host}
    port = ${lmtpPort}
  }
  unix_listener lmtp {
    mode = 0600
  }
}
service pop3-login {
  chroot =
}
service anvil {
  chroot =
  # No auth penalty: a refused login must not hold back the next one from loopback by seconds.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
protocol lmtp {
  mail_plugins = sieve
  postmaster_address = postmaster@lab.invalid
}
plugin {
  sieve = ${dir}/home/%u/.dovecot.sieve
  sieve_before = ${dir}/before.sieve
}
`;
  await writeFile(join(dir, 'dovecot.conf'), conf);
  await writeFile(join(dir, 'passwd'), `${opts.users.map((u) => `${u.user}:{PLAIN}${u.pass}::::::`).join('\n')}\n`);
  await writeFile(join(dir, 'before.sieve'), SIEVE);
  for (const d of ['run', 'state', 'home']) await mkdir(join(dir, d));
  if (root) {
    for (const p of [dir, join(dir, 'run'), join(dir, 'state'), join(dir, 'home'), join(dir, 'passwd'), join(dir, 'before.sieve'), join(dir, 'dovecot.conf')])
      await chown(p, uid, gid);
  }
  await chmod(dir, 0o755);
  const log = async () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '');
  const bin = which('dovecot') as string;
  // Tied to this process: a SIGKILLed lab or test runner takes its Dovecot with it.
  const child: ChildProcess = spawnTied(bin, ['-F', '-c', join(dir, 'dovecot.conf')], { uid, gid });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await Promise.race([
      Promise.all([waitListening(host, imapPort, 15_000, 'dovecot', log), waitListening(host, lmtpPort, 15_000, 'dovecot', log)]),
      exited.then(() => {
        throw new Error(`dovecot exited: ${stderr}`);
      }),
    ]);
  } catch (e) {
    // The watchdog's pipe ends: it stops Dovecot even if this kill reaches only the watchdog.
    child.stdin?.destroy();
    child.kill('SIGKILL');
    const text = await log();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`dovecot did not start: ${(e as Error).message}\n${text}`);
  }
  return {
    host,
    imapPort,
    lmtpPort,
    dir,
    log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => {
          child.stdin?.destroy();
          child.kill('SIGKILL');
        }, 5000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
