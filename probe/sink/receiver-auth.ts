/**
 * What a receiver concludes about a delivery: DKIM, SPF and DMARC, the steps of mailauth's
 * `authenticate()` with ARC and BIMI off, but from mailauth's own submodules (`lib/dkim/verify`,
 * `lib/spf`, `lib/dmarc`), so the sink never loads what it does not use: BIMI with its VMC and
 * ASN.1 parsers, the XML parser, ARC sealing. test/probe/sink/sink.test.ts holds its verdicts
 * to `authenticate()`'s on the same messages and records.
 */
import { isIP } from 'node:net';
import type { DNSResolver } from 'mailauth';
import { evaluateDmarc } from 'mailauth/lib/dmarc/index.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { spf } from 'mailauth/lib/spf/index.js';

export interface ReceiverAuthOptions {
  /** The delivering IP. */
  ip: string;
  helo: string;
  /** MAIL FROM. */
  sender: string;
  /** The receiving host's name (authserv-id). */
  mta: string;
  resolver: DNSResolver;
}

/** The parts of `authenticate()`'s result the sink reads. */
export interface ReceiverAuth {
  dkim: { results: { status?: { result?: string } }[] };
  spf: { status?: { result?: string } } | false;
  dmarc: { status?: { result?: string } } | false;
}

export async function receiverAuth(raw: Buffer, o: ReceiverAuthOptions): Promise<ReceiverAuth> {
  const dkim = await dkimVerify(raw, { resolver: o.resolver, sender: o.sender });
  // As authenticate() does: an IP literal as HELO name is written in brackets.
  const helo = o.helo || o.ip;
  const spfResult = await spf({ ip: o.ip, helo: isIP(helo) ? `[${helo}]` : helo, sender: o.sender, mta: o.mta, resolver: o.resolver });
  let dmarc: ReceiverAuth['dmarc'] = false;
  if (dkim.headerFrom) {
    const evaluated = await evaluateDmarc({
      headerFrom: dkim.headerFrom,
      fromFields: dkim.fromFields,
      spfDomains: spfResult?.status?.result === 'pass' && spfResult.domain ? [spfResult.domain] : [],
      dkimDomains: (dkim.results ?? [])
        .filter((r) => r.status?.result === 'pass')
        // As authenticate() passes them (a passing signature has its signing domain).
        .map((r) => ({ id: r.id, domain: r.signingDomain as string, aligned: r.status?.aligned, underSized: r.status?.underSized })),
      resolver: o.resolver,
    });
    dmarc = evaluated.response;
  }
  return { dkim: { results: dkim.results ?? [] }, spf: spfResult ?? false, dmarc };
}
