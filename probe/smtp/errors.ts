/**
 * Error catalogue of the SMTP side (smtp check, round trip, sink): the stable codes that failed
 * results carry in `code`, each with its error class. Messages add the server's reply.
 */
import type { ErrorClass } from '../../protocol/results.js';

export interface SmtpErrorDef {
  readonly errorClass: ErrorClass;
  readonly message: string;
}

export const SMTP_ERRORS = {
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
} as const satisfies Record<string, SmtpErrorDef>;

export type SmtpErrorCode = keyof typeof SMTP_ERRORS;

/** Codes the sink answers unacceptable messages with (never results; logged and counted). */
export const SINK_REJECTS = {
  sink_unsigned: { reply: 550, enhanced: '5.7.1', message: 'only signed mailprobe round-trip messages are accepted here' },
  sink_bad_signature: { reply: 550, enhanced: '5.7.1', message: 'the round-trip signature does not verify' },
  sink_stale: { reply: 550, enhanced: '5.7.1', message: 'the round-trip message is too old or from the future' },
  sink_replay: { reply: 550, enhanced: '5.7.1', message: 'this round-trip message id was delivered before (a replay)' },
  sink_relay_denied: { reply: 550, enhanced: '5.7.1', message: 'relaying denied: this sink accepts only the round-trip address' },
  sink_too_big: { reply: 552, enhanced: '5.3.4', message: 'message exceeds the sink size limit' },
} as const;

export type SinkRejectCode = keyof typeof SINK_REJECTS;
