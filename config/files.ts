/**
 * The files a plan names (the SMTP check's extra CAs, the sink's certificate and key), checked
 * when the plan is validated so a missing or broken file is refused at `config check` and at
 * start, not found by every SMTP session of every interval. The preflight reports the same
 * checks one line per file.
 */
import type { PlanConfig } from './schema.js';
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { createPrivateKey, X509Certificate } = process.getBuiltinModule('node:crypto');
const { readFile: readFileCb, readFileSync } = process.getBuiltinModule('node:fs');
const { promisify } = process.getBuiltinModule('node:util');

/**
 * fs.readFile as a promise without node:fs/promises, which loads readline's interface, the REPL
 * history and the file watchers with it (Node 24): ~0.5 MB of a probe's RSS that reads two files.
 * Same errors (code and message) as fs/promises' readFile.
 */
export const readFile: typeof import('node:fs/promises').readFile = promisify(readFileCb) as typeof import('node:fs/promises').readFile;

export interface PlanFile {
  /** The plan path that names it, e.g. `probes.smtp.ca_file`. */
  field: string;
  path: string;
  kind: 'certificates' | 'private-key';
}

/** Every file the plan names, with what it must hold. */
export function planFiles(plan: PlanConfig): PlanFile[] {
  const out: PlanFile[] = [];
  if (plan.probes.smtp.ca_file) out.push({ field: 'probes.smtp.ca_file', path: plan.probes.smtp.ca_file, kind: 'certificates' });
  const sink = plan.probes.roundtrip?.sink;
  if (sink?.tls_cert_file) out.push({ field: 'probes.roundtrip.sink.tls_cert_file', path: sink.tls_cert_file, kind: 'certificates' });
  if (sink?.tls_key_file) out.push({ field: 'probes.roundtrip.sink.tls_key_file', path: sink.tls_key_file, kind: 'private-key' });
  return out;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** Why the file cannot be used, or null; `what` is the parsed content on success. */
export function checkPlanFile(f: PlanFile): { problem: string } | { problem: null; what: string } {
  let text: string;
  try {
    text = readFileSync(f.path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return { problem: `cannot read ${f.path}: ${code}` };
  }
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (f.kind === 'private-key') {
    const key = blocks.find((b) => /PRIVATE KEY$/.test(b[1] ?? ''));
    if (!key) return { problem: `${f.path} holds no PEM private key (-----BEGIN PRIVATE KEY-----)` };
    try {
      const k = createPrivateKey(key[0]);
      return { problem: null, what: `${k.asymmetricKeyType ?? 'private'} key` };
    } catch (e) {
      return { problem: `${f.path}: the private key does not parse: ${(e as Error).message}` };
    }
  }
  const certs = blocks.filter((b) => b[1] === 'CERTIFICATE');
  if (certs.length === 0) return { problem: `${f.path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` };
  const subjects: string[] = [];
  for (const [i, c] of certs.entries()) {
    try {
      subjects.push(new X509Certificate(c[0]).subject.replace(/\n/g, ', '));
    } catch (e) {
      return { problem: `${f.path}: certificate ${i + 1} does not parse: ${(e as Error).message}` };
    }
  }
  return { problem: null, what: `${certs.length} certificate${certs.length > 1 ? 's' : ''} (${subjects[0]}${certs.length > 1 ? ', …' : ''})` };
}

/** `path: rule` for every file that cannot be used, and a sink key that does not match its certificate. */
export function planFileProblems(plan: PlanConfig): string[] {
  const out: string[] = [];
  for (const f of planFiles(plan)) {
    const r = checkPlanFile(f);
    if (r.problem) out.push(`${f.field}: ${r.problem}`);
  }
  const sink = plan.probes.roundtrip?.sink;
  if (sink && Boolean(sink.tls_cert_file) !== Boolean(sink.tls_key_file)) {
    out.push(
      `probes.roundtrip.sink.${sink.tls_cert_file ? 'tls_key_file' : 'tls_cert_file'}: is required with probes.roundtrip.sink.${sink.tls_cert_file ? 'tls_cert_file' : 'tls_key_file'}`,
    );
  } else if (sink?.tls_cert_file && sink.tls_key_file && out.length === 0) {
    try {
      const cert = new X509Certificate(readFileSync(sink.tls_cert_file));
      if (!cert.checkPrivateKey(createPrivateKey(readFileSync(sink.tls_key_file)))) {
        out.push(`probes.roundtrip.sink.tls_key_file: ${sink.tls_key_file} is not the key of the certificate in ${sink.tls_cert_file}`);
      }
    } catch (e) {
      out.push(`probes.roundtrip.sink.tls_key_file: ${(e as Error).message}`);
    }
  }
  return out;
}
