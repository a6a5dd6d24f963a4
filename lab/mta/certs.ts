/**
 * The lab's certificates, made at run time with the `openssl` CLI in a temp dir: a lab CA, a
 * leaf for the mail host (which the lab MTAs present) and a leaf for a wrong name (the
 * bad-certificate fault). EC P-256 keys keep it fast (a few ms per certificate).
 */
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KeyPair {
  key: string;
  cert: string;
}

export interface LabCerts {
  dir: string;
  /** The lab CA (PEM) and its file, for probes.smtp.ca_file. */
  caPem: string;
  caFile: string;
  /** Leaf for the mail host (and the names passed in `extraNames`). */
  mailHost: KeyPair;
  /** Leaf for `wrongName`, signed by the same CA: verifies as a chain but not for the mail host. */
  wrongName: KeyPair;
  /** Leaf for the mail host that expires `expiringInSeconds` after it was made (with that option). */
  expiring?: KeyPair;
  /** Removes the temp dir. */
  cleanup(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr ?? err.message}`);
  }
}

/** `openssl req` arguments for a new EC P-256 key, unencrypted. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A new EC P-256 key `<base>.key` and a signing request `<base>.csr` for `CN=name`. */
async function request(dir: string, base: string, name: string): Promise<void> {
  await openssl(['req', '-new', ...NEW_EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`], dir);
}

/** The key and the signed certificate of `base`. */
async function pairOf(dir: string, base: string): Promise<KeyPair> {
  return { key: await readFile(join(dir, `${base}.key`), 'utf8'), cert: await readFile(join(dir, `${base}.crt`), 'utf8') };
}

async function leaf(dir: string, name: string, sans: string[], days: number): Promise<KeyPair> {
  const base = name.replace(/[^A-Za-z0-9.-]/g, '_');
  await writeFile(
    join(dir, `${base}.ext`),
    `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  await request(dir, base, name);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      String(days),
      '-out',
      `${base}.crt`,
      '-extfile',
      `${base}.ext`,
    ],
    dir,
  );
  return pairOf(dir, base);
}

/**
 * A leaf for `name` that expires `seconds` from now: `openssl x509` (3.0) only takes whole days,
 * so this signs with `openssl ca`, which takes an end date.
 */
async function shortLeaf(dir: string, name: string, seconds: number): Promise<KeyPair> {
  const base = 'expiring';
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = lab',
      '[lab]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir',
      'serial = $dir/ca.srl',
      'certificate = $dir/ca.crt',
      'private_key = $dir/ca.key',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'copy_extensions = none',
      '[any]',
      'commonName = supplied',
      '[ext]',
      `subjectAltName = DNS:${name}`,
      'extendedKeyUsage = serverAuth',
      'basicConstraints = CA:FALSE',
      '',
    ].join('\n'),
  );
  await request(dir, base, name);
  const stamp = (ms: number) => `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
  await openssl(
    [
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-in',
      `${base}.csr`,
      '-out',
      `${base}.crt`,
      '-extensions',
      'ext',
      '-notext',
      '-startdate',
      stamp(Date.now() - 3_600_000),
      '-enddate',
      stamp(Date.now() + seconds * 1000),
    ],
    dir,
  );
  return pairOf(dir, base);
}

/**
 * The TLSA record (`usage selector type hex`) for a PEM certificate, computed here with openssl's
 * view of the certificate (node:crypto X509), independently of the probe's matcher.
 */
export function tlsaRecordFor(pem: string, usage: 0 | 1 | 2 | 3, selector: 0 | 1, mtype: 0 | 1 | 2): string {
  const x = new X509Certificate(pem);
  const sel = selector === 0 ? x.raw : x.publicKey.export({ type: 'spki', format: 'der' });
  const data =
    mtype === 0
      ? sel
      : createHash(mtype === 1 ? 'sha256' : 'sha512')
          .update(sel)
          .digest();
  return `${usage} ${selector} ${mtype} ${data.toString('hex')}`;
}

export async function makeLabCerts(opts: {
  mailHost: string;
  wrongName?: string;
  extraNames?: string[];
  days?: number;
  /** Also make {@link LabCerts.expiring}, valid for this many more seconds. */
  expiringInSeconds?: number;
}): Promise<LabCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'mailprobe-certs-'));
  const days = opts.days ?? 30;
  try {
    await openssl(['req', '-x509', ...NEW_EC_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(days), '-subj', '/CN=mailprobe lab CA'], dir);
    const mailHost = await leaf(dir, opts.mailHost, [opts.mailHost, ...(opts.extraNames ?? [])], days);
    const wrongName = await leaf(dir, opts.wrongName ?? 'wrong.example.test', [opts.wrongName ?? 'wrong.example.test'], days);
    const caFile = join(dir, 'ca.crt');
    const expiring = opts.expiringInSeconds === undefined ? undefined : await shortLeaf(dir, opts.mailHost, opts.expiringInSeconds);
    return {
      dir,
      caPem: await readFile(caFile, 'utf8'),
      caFile,
      mailHost,
      wrongName,
      ...(expiring ? { expiring } : {}),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
