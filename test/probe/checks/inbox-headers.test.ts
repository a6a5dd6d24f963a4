import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { deliveringIp, headerLines, receiverVerdicts } from '../../../probe/checks/inbox-headers.js';

const sample = (name: string) => headerLines(readFileSync(new URL(`../fixtures/receivers/${name}.txt`, import.meta.url), 'utf8').replace(/\n/g, '\r\n'));

test('Gmail: verdicts from mx.google.com’s Authentication-Results (not its ARC copy), the IP from its Received header', () => {
  const h = sample('gmail');
  assert.deepEqual(receiverVerdicts(h), { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none' });
  // Below Gmail's hop: Oracle's own internal hops (127.0.0.1, 141.146.126.70…).
  assert.equal(deliveringIp(h), '156.151.31.86');
});

test('Microsoft: an Authentication-Results without authserv-id, bestguesspass, a bare (IP) in Received', () => {
  const h = sample('microsoft');
  assert.deepEqual(receiverVerdicts(h), { spf: 'pass', dkim: 'pass', dmarc: 'none', arc: 'none' });
  // Above it: Exchange Online's internal IPv6 hops.
  assert.equal(deliveringIp(h), '15.235.99.80');
});

test('Yahoo: dmarc=pass(p=NONE,sp=QUARANTINE) with no space, `from IP (EHLO host)` Received', () => {
  const h = sample('yahoo');
  assert.deepEqual(receiverVerdicts(h), { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none' });
  assert.equal(deliveringIp(h), '209.85.219.48');
});

test('the topmost Authentication-Results is the receiver’s; failures and unknown words map into the vocabulary', () => {
  const h = headerLines(
    [
      'Authentication-Results: mx.receiver.test; spf=softfail smtp.mailfrom=a.test; dkim=fail header.d=a.test; dkim=pass header.d=b.test; dmarc=hardfail; arc=fancy',
      'Authentication-Results: relay.sender.test; spf=pass; dkim=pass; dmarc=pass',
      '',
      'body',
    ].join('\r\n'),
  );
  assert.deepEqual(receiverVerdicts(h), { spf: 'softfail', dkim: 'pass', dmarc: 'fail', arc: 'neutral' });
  assert.equal(receiverVerdicts(headerLines('Subject: x\r\n\r\n')), undefined);
});

test('without an SPF statement: the hop above the sending server’s own Received header', () => {
  const h = headerLines(
    [
      'Received: from mx.receiver.test ([10.0.0.5]) by store.receiver.test with LMTP; Mon, 30 Nov 2026 10:00:02 +0000',
      'Received: from mail.company.test (mail.company.test [192.0.2.25]) by mx.receiver.test with ESMTPS; Mon, 30 Nov 2026 10:00:01 +0000',
      'Received: from probe.test (probe.test [198.51.100.7]) by mail.company.test with ESMTP; Mon, 30 Nov 2026 10:00:00 +0000',
      '',
      '',
    ].join('\r\n'),
  );
  assert.equal(deliveringIp(h), '192.0.2.25');
  assert.equal(deliveringIp(headerLines('Subject: x\r\n\r\n')), undefined);
});
