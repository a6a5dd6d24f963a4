/**
 * Validation that catches what would fail later: host names that are IPs, sizes and durations
 * beyond sane bounds, files that are missing or hold no usable PEM, a window already over, YAML
 * errors (alias bombs included) as `line:col: message`, and `--help` / unknown options on every
 * command.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, parsePlan, planWarnings } from '../../config/load.js';
import { makeLabCerts, type LabCerts } from '../../lab/mta/certs.js';
import { runCli } from '../support/cli.js';
import { planProblemsOf, testPlan, testPlanInput } from '../../bench/lib/plan.js';

const dir = mkdtempSync(join(tmpdir(), 'mailprobe-validation-'));
let certs: LabCerts;
before(async () => {
  certs = await makeLabCerts({ mailHost: 'mail.company.test', wrongName: 'other.company.test' });
});
after(async () => {
  await certs?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('host names are names', () => {
  test('IP literals and numeric names are refused in every host-name field', () => {
    assert.deepEqual(
      planProblemsOf({
        cutover: { mail_host: '198.51.100.20', domain: '198.51.100.20', spf_domain: '2001:db8::25', dnsbl: ['zen.spamhaus.org', '198.51.100.20'] },
      }),
      [
        'cutover.domain: 198.51.100.20 is an IP address; this field takes a host name such as mail.company.com',
        'cutover.mail_host: 198.51.100.20 is an IP address; this field takes a host name such as mail.company.com',
        'cutover.dnsbl[1]: 198.51.100.20 is an IP address; this field takes a host name such as mail.company.com',
        'cutover.spf_domain: 2001:db8::25 is an IP address; this field takes a host name such as mail.company.com',
      ],
    );
    assert.deepEqual(planProblemsOf({ cutover: { mail_host: 'mail.10' } }), [
      'cutover.mail_host: "mail.10" ends in a number, so it is no host name (an IP address?); use a name such as mail.company.com',
    ]);
  });
});

describe('sizes and durations within sane bounds', () => {
  test('too large is refused with the bound named, zero is refused', () => {
    assert.deepEqual(
      planProblemsOf({
        probes: { interval: '400d', timeout: '0s', push: { spool_max_bytes: '1000GiB' } },
        collector: { body_limit: '99999999999999GiB' },
      }),
      [
        'probes.interval: 400d is more than the limit of 1d',
        'probes.timeout: 0s must be more than 0',
        'probes.push.spool_max_bytes: 1000GiB is more than the limit of 64GiB',
        'collector.body_limit: 99999999999999GiB is more than the limit of 256MiB',
      ],
    );
  });

  test('the limits themselves are accepted', () => {
    const plan = testPlan({ probes: { interval: '1d', window_interval: '1h', timeout: '5m' }, collector: { body_limit: '256MiB' } });
    assert.equal(plan.collector.body_limit, 256 * 1024 * 1024);
    assert.equal(plan.probes.interval, 86_400_000);
  });
});

describe('files the plan names exist and hold PEM that parses', () => {
  test('a missing CA file is refused at validation, not at every SMTP session', () => {
    assert.deepEqual(planProblemsOf({ probes: { smtp: { ca_file: '/nonexistent.pem' } } }), ['probes.smtp.ca_file: cannot read /nonexistent.pem: ENOENT']);
  });

  test('a file without a certificate, and a broken certificate, are refused', () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a certificate\n');
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    assert.deepEqual(planProblemsOf({ probes: { smtp: { ca_file: text } } }), [
      `probes.smtp.ca_file: ${text} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    const [p] = planProblemsOf({ probes: { smtp: { ca_file: broken } } });
    assert.match(p ?? '', new RegExp(`^probes\\.smtp\\.ca_file: ${broken}: certificate 1 does not parse: `));
  });

  test('the sink certificate needs its key, and the key must be the certificate’s', () => {
    const cert = join(dir, 'sink.crt');
    const key = join(dir, 'sink.key');
    const otherKey = join(dir, 'other.key');
    writeFileSync(cert, certs.mailHost.cert);
    writeFileSync(key, certs.mailHost.key);
    writeFileSync(otherKey, certs.wrongName.key);
    const rt = (sink: Record<string, unknown>) => ({ probes: { roundtrip: { to: 'rt@company.test', sink } } });
    assert.deepEqual(planProblemsOf(rt({ tls_cert_file: cert })), ['probes.roundtrip.sink.tls_key_file: is required with probes.roundtrip.sink.tls_cert_file']);
    assert.deepEqual(planProblemsOf(rt({ tls_cert_file: cert, tls_key_file: cert })), [
      `probes.roundtrip.sink.tls_key_file: ${cert} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    ]);
    assert.deepEqual(planProblemsOf(rt({ tls_cert_file: cert, tls_key_file: otherKey })), [
      `probes.roundtrip.sink.tls_key_file: ${otherKey} is not the key of the certificate in ${cert}`,
    ]);
    const ok = testPlan({
      ...rt({ tls_cert_file: cert, tls_key_file: key }),
      probes: { roundtrip: { to: 'rt@company.test', sink: { tls_cert_file: cert, tls_key_file: key } }, smtp: { ca_file: certs.caFile } },
    });
    assert.equal(ok.probes.smtp.ca_file, certs.caFile);
  });
});

describe('a window already over', () => {
  const past = { window: { start: '2025-11-01T20:00:00Z', end: '2025-11-02T02:00:00Z' } };

  test('is valid, with a warning naming when it ended', () => {
    const plan = testPlan({ cutover: past });
    assert.deepEqual(planWarnings(plan, Date.parse('2026-11-30T08:00:00Z')), [
      'cutover.window: ended 2025-11-02T02:00:00Z (393 days ago); probes run at probes.interval and no alert treats this as the window (move the window if the cutover is still ahead)',
    ]);
    assert.deepEqual(planWarnings(testPlan()), []);
  });

  test('config check and a command that loads the plan print it', () => {
    const file = join(dir, 'past.yaml');
    writeFileSync(file, JSON.stringify(testPlanInput({ cutover: past })));
    const check = runCli(['config', 'check', file]);
    assert.equal(check.status, 0, check.stderr);
    assert.equal(check.stdout, `${file}: ok\n`);
    assert.match(check.stderr, new RegExp(`^${file}: warning: cutover\\.window: ended 2025-11-02T02:00:00Z \\(\\d+ days ago\\)`));
    const render = runCli(['render', 'alertmanager', '--config', file]);
    assert.equal(render.status, 0, render.stderr);
    assert.match(render.stderr, /^mailprobe render: warning: cutover\.window: ended 2025-11-02T02:00:00Z/);
  });
});

describe('YAML problems are line:col: message, never a stack', () => {
  const base = JSON.stringify(testPlanInput());
  const fails = (text: string): string[] => {
    try {
      parsePlan(text, 'p.yaml');
    } catch (e) {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
      return [...e.problems];
    }
    return assert.fail('accepted');
  };

  test('an alias bomb is refused at the line of its first alias', () => {
    const bomb = [
      'x0: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]',
      'x1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'x2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'x3: [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ];
    assert.deepEqual(fails(`${bomb.join('\n')}\n`), ['2:9: more than 100 alias expansions (a YAML alias bomb?); write the repeated values out']);
  });

  test('more than 100 plain aliases, and an alias to no anchor', () => {
    const many = `anchor: &r 1.1.1.1\nlist: [${Array.from({ length: 101 }, () => '*r').join(', ')}]\n`;
    assert.deepEqual(fails(many), ['2:8: more than 100 alias expansions (a YAML alias bomb?); write the repeated values out']);
    assert.deepEqual(fails('cutover:\n  domain: *nope\n'), ['2:11: alias *nope names no anchor defined before it']);
  });

  test('a syntax error and a duplicate key name their place', () => {
    assert.deepEqual(fails('cutover:\n  domain: [a\n  x: 1\n'), ['3:3: Flow sequence in block collection must be sufficiently indented and end with a ]']);
    assert.deepEqual(fails('cutover:\n  domain: a.test\n  domain: b.test\n'), ['3:3: Map keys must be unique']);
    assert.ok(base.length > 0);
  });

  test('the command line prints the alias bomb as one line, exit 1, no stack trace', () => {
    const file = join(dir, 'bomb.yaml');
    writeFileSync(
      file,
      'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
    );
    const r = runCli(['config', 'check', file]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `${file}: invalid plan\n  - 2:8: more than 100 alias expansions (a YAML alias bomb?); write the repeated values out\n`);
  });
});
