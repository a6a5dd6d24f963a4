// The sample operations of a result, written straight into columns (protocol/checks/common.ts,
// `Ops` and `SampleOps`): each operation takes exactly its metric's labels from the writer's frame,
// a label set for one operation goes to no metric without that label, every result starts again
// from region and probe, and a buffer reused per push keeps no values of the push before.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { resultOps, SampleOps, type SampleOp } from '../../collector/samples.js';
import type { CheckResult } from '../../protocol/results.js';

const T = 1_800_000_000_000;
const probe = { id: 'p-eu', region: 'eu' };
const rp = { region: 'eu', probe: 'p-eu' };

const smtp: CheckResult = {
  type: 'smtp',
  startedAt: T,
  durationSeconds: 0.5,
  ok: true,
  ip: '127.0.0.3',
  side: 'new',
  port: 25,
  mode: 'rcpt',
  phases: { connect: 0.1, banner: 0.2, rcpt: 0.05 },
  tls: { version: 'TLSv1.3', certNames: ['mail.company.test'], certExpiry: 1_900_000_000, verified: true },
};
const dnsbl: CheckResult = {
  type: 'dnsbl',
  startedAt: T + 1,
  durationSeconds: 0.01,
  ok: true,
  ip: '127.0.0.2',
  side: 'old',
  list: 'zen.example',
  listed: true,
  answers: ['127.0.0.2'],
};
const dns: CheckResult = {
  type: 'dns',
  startedAt: T + 2,
  durationSeconds: 0.004,
  ok: true,
  resolver: '9.9.9.9',
  resolverName: 'Quad9',
  authoritative: false,
  name: 'mail.company.test',
  qtype: 'AAAA',
  transport: 'udp',
  rcode: 'NOERROR',
  answers: ['::1'],
  ttl: 300,
  side: 'new',
};

const SMTP_OPS: SampleOp[] = [
  { op: 'inc', metric: 'checks', labels: { ...rp, type: 'smtp', result: 'success' }, value: 1, ts: T },
  { op: 'observe', metric: 'smtpDuration', labels: { ...rp, ip: '127.0.0.3', side: 'new', phase: 'connect' }, value: 0.1, ts: T },
  { op: 'observe', metric: 'smtpDuration', labels: { ...rp, ip: '127.0.0.3', side: 'new', phase: 'banner' }, value: 0.2, ts: T },
  { op: 'observe', metric: 'smtpDuration', labels: { ...rp, ip: '127.0.0.3', side: 'new', phase: 'rcpt' }, value: 0.05, ts: T },
  { op: 'observe', metric: 'smtpSessionDuration', labels: { ...rp, ip: '127.0.0.3', side: 'new' }, value: 0.35000000000000003, ts: T },
  { op: 'inc', metric: 'smtpChecks', labels: { ...rp, ip: '127.0.0.3', side: 'new', result: 'success' }, value: 1, ts: T },
  { op: 'set', metric: 'smtpUp', labels: { ...rp, ip: '127.0.0.3', side: 'new' }, value: 1, ts: T },
  { op: 'set', metric: 'tlsCertExpiry', labels: { ip: '127.0.0.3', side: 'new' }, value: 1_900_000_000, ts: T },
  { op: 'set', metric: 'tlsCertValid', labels: { ip: '127.0.0.3', side: 'new' }, value: 1, ts: T },
];
const DNSBL_OPS: SampleOp[] = [
  { op: 'inc', metric: 'checks', labels: { ...rp, type: 'dnsbl', result: 'success' }, value: 1, ts: T + 1 },
  { op: 'set', metric: 'dnsblListed', labels: { ip: '127.0.0.2', side: 'old', list: 'zen.example' }, value: 1, ts: T + 1 },
];
const DNS_OPS: SampleOp[] = [
  { op: 'inc', metric: 'checks', labels: { ...rp, type: 'dns', result: 'success' }, value: 1, ts: T + 2 },
  { op: 'observe', metric: 'dnsLookupDuration', labels: { ...rp, resolver: '9.9.9.9', resolver_name: 'Quad9' }, value: 0.004, ts: T + 2 },
  { op: 'inc', metric: 'dnsLookups', labels: { ...rp, resolver: '9.9.9.9', resolver_name: 'Quad9', result: 'success' }, value: 1, ts: T + 2 },
  {
    op: 'one-of',
    metric: 'dnsAnswerSide',
    labels: { ...rp, resolver: '9.9.9.9', resolver_name: 'Quad9', name: 'mail.company.test', type: 'AAAA' },
    label: 'side',
    value: 'new',
    ts: T + 2,
  },
  {
    op: 'set',
    metric: 'dnsTtl',
    labels: { ...rp, resolver: '9.9.9.9', resolver_name: 'Quad9', name: 'mail.company.test', type: 'AAAA' },
    value: 300,
    ts: T + 2,
  },
];

test('each operation carries its metric’s labels from the frame, the labels of one operation reach no metric without them', () => {
  assert.deepEqual(resultOps(probe, smtp).list(), SMTP_OPS);
  assert.deepEqual(resultOps(probe, dns).list(), DNS_OPS, 'type is the query type here, not checks_total’s check type');
});

test('results written into one buffer: each starts from region and probe; the columns say the same as the objects', () => {
  const ops = new SampleOps();
  for (const r of [smtp, dnsbl]) resultOps(probe, r, ops);
  // Ingest writes one probe's batch per buffer; another probe's result still gets its own region and probe.
  resultOps({ id: 'p-us', region: 'us' }, dns, ops);
  const us = DNS_OPS.map((op) => ({ ...op, labels: { ...op.labels, region: 'us', probe: 'p-us' } }));
  assert.deepEqual(ops.list(), [...SMTP_OPS, ...DNSBL_OPS, ...us]);
  // The one-of gauge's chosen value sits in its own label's place (side, the last of dnsAnswerSide's).
  const i = ops.metric.indexOf('dnsAnswerSide');
  const at = ops.start[i] ?? Number.NaN;
  assert.deepEqual(ops.labels.slice(at, at + 7), ['us', 'p-us', '9.9.9.9', 'Quad9', 'mail.company.test', 'AAAA', 'new']);
  assert.equal(ops.kind[i], 'one-of');
  // Written as objects and back: the same operations.
  assert.deepEqual(SampleOps.from(ops.list()).list(), ops.list());
});

test('a cleared buffer holds none of the label values of the push before (a smaller push after a bigger one)', () => {
  const ops = new SampleOps();
  for (const r of [smtp, dns]) resultOps(probe, r, ops);
  const big = ops.size;
  ops.clear();
  assert.deepEqual(ops.labels.slice(0, big), new Array(big).fill(undefined));
  resultOps(probe, dnsbl, ops);
  assert.deepEqual(ops.list(), DNSBL_OPS);
  assert.ok(
    ops.labels.slice(ops.size).every((v) => v === undefined),
    'nothing past the new push’s values',
  );
});
