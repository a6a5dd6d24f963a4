/**
 * The probe's MTA-STS reading (probe/auth/mta-sts.ts) against mailauth's (default mode, which the
 * auth check used before) on the same inputs: the policy id of `_mta-sts` TXT record sets, policy
 * files (valid, lenient spellings, broken), and whether a policy lists a host.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicy, resolvePolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import type { DNSResolver } from 'mailauth';
import { parseStsPolicy, policyListsMx, stsPolicyId } from '../../../probe/auth/mta-sts.js';

const TXT_SETS: string[][] = [
  ['v=STSv1; id=20261204T2000'],
  ['v=STSv1;id=abc;'],
  ['  v=stsv1 ; ID = x1 '],
  ['v=STSv1; id='],
  ['v=STSv1'],
  ['v=STSv2; id=1'],
  ['unrelated', 'v=STSv1; id=one'],
  ['v=STSv1; id=one', 'v=STSv1; id=two'],
  [],
];

/** What mailauth's resolvePolicy makes of a TXT set: the id, false, or the error code. */
async function theirId(txts: string[]): Promise<string | false> {
  const resolver = (async () => {
    if (txts.length === 0) throw Object.assign(new Error('ENODATA'), { code: 'ENODATA' });
    return txts.map((t) => [t]);
  }) as unknown as DNSResolver;
  try {
    return await resolvePolicy('company.test', { resolver });
  } catch (e) {
    return `error ${(e as { code?: string }).code}`;
  }
}

function ourId(txts: string[]): string | false {
  try {
    return stsPolicyId(txts);
  } catch {
    return 'error multi_sts_records';
  }
}

test('the policy id of a TXT record set: the same as mailauth for each set', async () => {
  const ours = TXT_SETS.map(ourId);
  assert.deepEqual(ours, ['20261204T2000', 'abc', 'x1', false, false, false, 'one', 'error multi_sts_records', false]);
  assert.deepEqual(ours, await Promise.all(TXT_SETS.map(theirId)));
});

const POLICIES = [
  'version: STSv1\nmode: enforce\nmx: mail.company.test\nmax_age: 86400\n',
  'version: STSv1\r\nmode: testing\r\nmx: *.company.test\r\nmx: backup.other.test\r\nmax_age: 600\r\n',
  'Version: STSv1\nMODE: Enforce\nmx: MAIL.company.test\nmax_age: 600\n',
  'version: STSv1\nmode: none\nmax_age: 0\n',
  'version: STSv1\nmode: enforce\nmode: none\nmx: mail.company.test\nmax_age: 600\n',
  'version: STSv2\nmode: enforce\nmx: mail.company.test\nmax_age: 600\n',
  'version: STSv1\nmode: strict\nmx: mail.company.test\nmax_age: 600\n',
  'version: STSv1\nmx: mail.company.test\nmax_age: 600\n',
  'version: STSv1\nmode: enforce\nmax_age: 600\n',
  'version: STSv1\nmode: enforce\nmx: mail.company.test\nmax_age: 99999999999\n',
  'version: STSv1\nmode: enforce\nmx: mail.company.test\n',
  '<html>not a policy</html>',
];
const HOSTS = ['mail.company.test', 'MAIL.company.test.', 'a.b.company.test', 'company.test', 'backup.other.test', '*.company.test'];

type Parsed = { error: string } | { mode: string; mx: string[]; lists: boolean[] };

test('policy files and host matching: the same as mailauth for each policy and host', () => {
  const ours: Parsed[] = POLICIES.map((p) => {
    try {
      const policy = parseStsPolicy(p);
      return { mode: policy.mode, mx: policy.mx, lists: HOSTS.map((h) => policyListsMx(h, policy)) };
    } catch (e) {
      return { error: (e as Error).message };
    }
  });
  const theirs: Parsed[] = POLICIES.map((p) => {
    try {
      const policy = parsePolicy(p);
      return { mode: String(policy.mode), mx: policy.mx ?? [], lists: HOSTS.map((h) => validateMx(h, policy).valid) };
    } catch (e) {
      return { error: (e as Error).message };
    }
  });
  assert.deepEqual(ours, theirs);
  // The values themselves, so that two equal mistakes cannot pass.
  assert.deepEqual(ours[0], { mode: 'enforce', mx: ['mail.company.test'], lists: [true, true, false, false, false, false] });
  assert.deepEqual(ours[1], { mode: 'testing', mx: ['*.company.test', 'backup.other.test'], lists: [true, true, false, false, true, false] });
  assert.deepEqual(ours[3], { mode: 'none', mx: [], lists: [true, true, true, true, true, true] });
  assert.deepEqual(
    ours.slice(5).map((o) => ('error' in o ? o.error : o.mode)),
    [
      'Invalid version field',
      'Invalid mode field',
      'Missing mode field',
      'Missing mx field',
      'Invalid max_age field',
      'Invalid max_age field',
      'Invalid version field',
    ],
  );
});
