/**
 * DnsError: a failure of the DNS client or a DNS-side check (dns, ttl, rdns, auth, dnsbl), with a
 * `dns_*` (or dnsbl_, mta_sts_, spf_) code of the failure catalogue (protocol/failures.ts) and
 * the RCODE when the failure is one.
 */
import type { FailureCode } from '../../protocol/failures.js';
import { CheckFailure } from '../errors.js';

export type DnsErrorCode = Extract<FailureCode, `dns_${string}` | `dnsbl_${string}` | 'mta_sts_fetch' | 'spf_temperror'>;

export class DnsError extends CheckFailure {
  declare readonly code: DnsErrorCode;
  constructor(
    code: DnsErrorCode,
    detail: string,
    /** The RCODE name when the failure is an RCODE, else '-'. */
    readonly rcode = '-',
  ) {
    super(code, detail);
    this.name = 'DnsError';
  }
}

export function isDnsError(e: unknown): e is DnsError {
  return e instanceof DnsError;
}
