/**
 * The one failure vocabulary: every stable code a failed result carries in `code`, each with the
 * error class the collector counts it by and what it means. Checks, the DNS client, the SMTP
 * session and the runtime all fail through {@link failure} with one of these codes; a detail
 * (the server's reply, the address, the file) is appended to the meaning.
 */
import { text, type ErrorClass, type Failure } from './checks/common.js';

export interface FailureDef {
  readonly errorClass: ErrorClass;
  readonly message: string;
}

export const FAILURES = {
  // ---- the runtime: a check that could not finish, or not run at all ----
  check_timeout: { errorClass: 'timeout', message: 'the check did not finish within its timeout' },
  check_threw: { errorClass: 'internal', message: 'the check threw (a bug or bad config)' },
  invalid_result: { errorClass: 'internal', message: 'the check returned a result that does not match the wire schema' },
  secret_missing: { errorClass: 'internal', message: 'a secret the check needs is not in the environment' },
  file_unreadable: { errorClass: 'internal', message: 'a file the check needs cannot be read' },
  bad_spec: { errorClass: 'internal', message: 'a server spec of the plan is malformed' },

  // ---- DNS client and the DNS-side checks (dns, ttl, rdns, auth, dnsbl) ----
  dns_timeout: { errorClass: 'timeout', message: 'no DNS reply within the transport timeout' },
  dns_aborted: { errorClass: 'timeout', message: 'the DNS query was aborted (probe timeout or shutdown)' },
  dns_id_mismatch: { errorClass: 'bad_response', message: 'replies arrived, but none carried our query id and question' },
  dns_malformed: { errorClass: 'bad_response', message: 'the reply is not a well-formed DNS message' },
  dns_bad_reply: { errorClass: 'bad_response', message: 'the reply is not an answer to our question' },
  dns_truncated: { errorClass: 'bad_response', message: 'truncated over UDP and the TCP retry failed' },
  dns_doh_http: { errorClass: 'bad_response', message: 'the DoH server answered with an HTTP error or a wrong content type' },
  dns_network: { errorClass: 'network', message: 'the DNS server could not be reached (refused, unreachable, reset)' },
  dns_servfail: { errorClass: 'servfail', message: 'SERVFAIL' },
  dns_nxdomain: { errorClass: 'nxdomain', message: 'NXDOMAIN for a name that must exist' },
  dns_refused: { errorClass: 'refused', message: 'REFUSED' },
  dns_rcode: { errorClass: 'bad_response', message: 'an unexpected RCODE' },
  dns_no_authoritative: { errorClass: 'nxdomain', message: 'no authoritative servers found for the zone' },
  dns_auth_unresolved: { errorClass: 'nxdomain', message: 'the authoritative server name of probes.authoritative has no address' },
  dnsbl_refused: { errorClass: 'dnsbl_refused', message: 'the blocklist refused to answer (public resolver, typo or rate limit)' },
  dnsbl_bad_answer: { errorClass: 'bad_response', message: 'the blocklist answered outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN?)' },
  mta_sts_fetch: { errorClass: 'network', message: 'the MTA-STS policy could not be fetched' },
  spf_temperror: { errorClass: 'servfail', message: 'SPF evaluation hit a DNS error (temperror)' },

  // ---- SMTP (smtp check, round trip) ----
  smtp_connect_refused: { errorClass: 'connect_refused', message: 'the server refused the TCP connection' },
  smtp_connect_failed: { errorClass: 'connect_refused', message: 'the TCP connection failed (unreachable, reset)' },
  smtp_connect_timeout: { errorClass: 'connect_timeout', message: 'the TCP connection was not established within probes.smtp.connect_timeout' },
  smtp_banner_timeout: { errorClass: 'banner_timeout', message: 'no greeting within probes.smtp.banner_timeout' },
  smtp_banner_invalid: { errorClass: 'protocol', message: 'the greeting is not an SMTP reply' },
  smtp_tls_unavailable: { errorClass: 'tls_error', message: 'TLS is required but the server does not offer STARTTLS' },
  smtp_tls_failed: { errorClass: 'tls_error', message: 'the TLS handshake failed' },
  smtp_cert_invalid: { errorClass: 'cert_invalid', message: 'the certificate does not verify for the mail host' },
  smtp_auth_failed: { errorClass: 'auth_failed', message: 'authentication failed' },
  smtp_temp_fail: { errorClass: 'temp_fail', message: 'the server answered with a temporary failure (4xx)' },
  smtp_perm_fail: { errorClass: 'perm_fail', message: 'the server answered with a permanent failure (5xx)' },
  smtp_closed: { errorClass: 'protocol', message: 'the server closed the connection unexpectedly' },
  smtp_protocol: { errorClass: 'protocol', message: 'the server reply broke the protocol' },
  smtp_timeout: { errorClass: 'timeout', message: 'the server did not answer in time' },
  smtp_aborted: { errorClass: 'timeout', message: 'the check was aborted (probe timeout or shutdown)' },
  rt_lost: { errorClass: 'lost', message: 'the round-trip message did not arrive at the sink by the deadline' },

  // ---- IMAP (inbox check) ----
  imap_connect_refused: { errorClass: 'connect_refused', message: 'the IMAP server refused or reset the TCP connection' },
  imap_connect_timeout: { errorClass: 'connect_timeout', message: 'the IMAP connection was not established in time' },
  imap_tls_failed: { errorClass: 'tls_error', message: 'the TLS handshake with the IMAP server failed' },
  imap_cert_invalid: { errorClass: 'cert_invalid', message: 'the IMAP server certificate does not verify' },
  imap_login_refused: { errorClass: 'auth_failed', message: 'the IMAP server refused the login (user, password or token)' },
  imap_mailbox_missing: { errorClass: 'mailbox_missing', message: 'a folder of the seed mailbox does not exist at the receiver' },
  imap_protocol: { errorClass: 'protocol', message: 'the IMAP server answered outside the protocol or refused a command' },
  imap_timeout: { errorClass: 'timeout', message: 'the IMAP server did not answer in time' },
  inbox_lost: { errorClass: 'lost', message: 'the test message was not found in the seed mailbox by the deadline' },
} as const satisfies Record<string, FailureDef>;

export type FailureCode = keyof typeof FAILURES;

/** The meaning of a code with a detail appended, cut to the text limit. */
export function failureMessage(code: FailureCode, detail?: string): string {
  const def = FAILURES[code];
  return text(detail ? `${def.message}: ${detail}` : def.message);
}

/** The fields of a failed result: where it stopped, the code, and its class and message from the catalogue. */
export function failure(phase: string, code: FailureCode, detail?: string): Failure {
  return { ok: false, phase, errorClass: FAILURES[code].errorClass, code, message: failureMessage(code, detail) };
}
