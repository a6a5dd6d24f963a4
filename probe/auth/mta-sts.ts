/**
 * MTA-STS (RFC 8461) as far as the auth check reads it: the policy id of the `_mta-sts` TXT
 * record, the policy file, and whether the policy lists the mail host. Own code because
 * mailauth's module loads its tools (and with them joi) for three small functions. Lenient the
 * way mailauth's default mode is (case-insensitive field names and mode, whitespace trimmed);
 * test/probe/auth/mta-sts.test.ts compares both on the same inputs.
 */

export interface StsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  maxAge: number;
  /** MX patterns, lower case, `*.` wildcards kept. */
  mx: string[];
}

const MAX_AGE_LIMIT = 31_557_600;

/** The id of the one `v=STSv1` record among a name's TXT records; false if there is none usable. */
export function stsPolicyId(txts: readonly string[]): string | false {
  const records = txts.filter((r) => /^v=STSv1[ \t]*;/i.test(r.trim()));
  if (records.length > 1) throw new Error(`${records.length} MTA-STS TXT records (must be one)`);
  const parts = (records[0] ?? '').trim().split(';');
  if (parts.length < 2 || !/^v=STSv1$/i.test(parts[0]?.trim() ?? '')) return false;
  for (const field of parts.slice(1)) {
    const eq = field.indexOf('=');
    if (eq < 1) continue;
    const value = field.slice(eq + 1).trim();
    if (field.slice(0, eq).trim().toLowerCase() === 'id' && value) return value;
  }
  return false;
}

/** Parses a policy file; throws with the reason when it is not a valid policy. */
export function parseStsPolicy(file: string): StsPolicy {
  const seen = new Map<string, string>();
  const mx: string[] = [];
  for (const line of file.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'mx') {
      if (!mx.includes(value.toLowerCase())) mx.push(value.toLowerCase());
    } else if (!seen.has(key)) seen.set(key, value); // a repeated field: the first one counts
  }
  if (seen.get('version') !== 'STSv1') throw new Error('Invalid version field');
  const mode = seen.get('mode')?.toLowerCase();
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') throw new Error(mode === undefined ? 'Missing mode field' : 'Invalid mode field');
  const maxAge = Number(seen.get('max_age') ?? Number.NaN);
  if (Number.isNaN(maxAge) || maxAge < 0 || maxAge > MAX_AGE_LIMIT) throw new Error('Invalid max_age field');
  if (mode !== 'none' && mx.length === 0) throw new Error('Missing mx field');
  return { mode, maxAge, mx };
}

/** Whether the policy lets mail go to `host` (mode none lets everything; `*.` matches one left-most label). */
export function policyListsMx(host: string, policy: StsPolicy): boolean {
  if (policy.mode === 'none') return true;
  const mx = host.trim().toLowerCase().replace(/\.$/, '');
  if (mx === '' || mx.includes('*')) return false;
  return policy.mx.some((p) => {
    const allowed = p.trim().replace(/\.$/, '');
    if (allowed === '') return false;
    if (!allowed.startsWith('*.')) return allowed === mx;
    const suffix = allowed.slice(1);
    return mx.length > suffix.length && mx.endsWith(suffix) && !mx.slice(0, -suffix.length).includes('.');
  });
}
