// DNS names as the house compares them (protocol/dns-name.ts).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { bareName, withoutRootDot } from '../../protocol/dns-name.js';

test('the root dot goes, one only, and the case stays unless compared', () => {
  assert.equal(withoutRootDot('Mail.Example.'), 'Mail.Example');
  assert.equal(withoutRootDot('mail.example'), 'mail.example');
  assert.equal(withoutRootDot('mail.example..'), 'mail.example.');
  assert.equal(withoutRootDot(''), '');
  assert.equal(bareName('MAIL.Example.'), 'mail.example');
  assert.equal(bareName('_25._tcp.Mail.example'), '_25._tcp.mail.example');
});
