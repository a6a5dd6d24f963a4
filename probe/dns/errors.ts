/**
 * Stable error codes of the DNS client and the DNS-side checks (dns, ttl, rdns, auth, dnsbl).
 * Each code maps to one error class of `protocol/results.ts`; the code is what a failed
 * result carries in `code`, the class what the collector counts by.
 */
import type { ErrorClass } from '../../protocol/results.js';

export const DNS_ERRORS = {
  /** No reply within the transport timeout. */
  DNS_TIMEOUT: 'timeout',
  /** The check was aborted (runtime timeout or probe stopping). */
  DNS_ABORTED: 'timeout',
  /** Replies arrived, but none carried our query id / question. */
  DNS_ID_MISMATCH: 'bad_response',
  /** A reply that does not parse as a DNS message (or whose counts do not match its records). */
  DNS_MALFORMED: 'bad_response',
  /** A reply that is not a response (QR=0) or whose question is not ours. */
  DNS_BAD_REPLY: 'bad_response',
  /** Truncated over UDP and the TCP retry failed as well. */
  DNS_TRUNCATED: 'bad_response',
  /** The DoH server answered with an HTTP error or a wrong content type. */
  DNS_DOH_HTTP: 'bad_response',
  /** Socket errors: refused, unreachable, reset. */
  DNS_NETWORK: 'network',
  /** RCODE SERVFAIL. */
  DNS_SERVFAIL: 'servfail',
  /** RCODE NXDOMAIN where the name must exist. */
  DNS_NXDOMAIN: 'nxdomain',
  /** RCODE REFUSED. */
  DNS_REFUSED: 'refused',
  /** Any other non-zero RCODE (FORMERR, NOTIMP…). */
  DNS_RCODE: 'bad_response',
  /** No authoritative servers could be found for the zone. */
  DNS_NO_AUTHORITATIVE: 'nxdomain',
  /** dnsbl: the list answered 127.255.255.x (public resolver, typo, rate limit). */
  DNSBL_REFUSED: 'dnsbl_refused',
  /** dnsbl: an answer outside 127.0.0.0/8. */
  DNSBL_BAD_ANSWER: 'bad_response',
  /** auth: the MTA-STS policy could not be fetched. */
  MTA_STS_FETCH: 'network',
  /** auth: SPF evaluation hit a DNS error (temperror). */
  SPF_TEMPERROR: 'servfail',
} as const satisfies Record<string, ErrorClass>;

export type DnsErrorCode = keyof typeof DNS_ERRORS;

/** A DNS failure with a stable code; thrown by the client, turned into a failed result by checks. */
export class DnsError extends Error {
  readonly code: DnsErrorCode;
  readonly errorClass: ErrorClass;
  /** The RCODE name when the failure is an RCODE, else '-'. */
  readonly rcode: string;
  constructor(code: DnsErrorCode, message: string, rcode = '-') {
    super(message);
    this.name = 'DnsError';
    this.code = code;
    this.errorClass = DNS_ERRORS[code];
    this.rcode = rcode;
  }
}

export function isDnsError(e: unknown): e is DnsError {
  return e instanceof DnsError;
}
