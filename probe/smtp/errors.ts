/**
 * Codes of the SMTP side: the failure codes the smtp check and the round trip fail with (their
 * meanings and error classes are in the one catalogue, protocol/failures.ts), and the replies
 * the sink answers unacceptable messages with.
 */
import type { FailureCode } from '../../protocol/failures.js';

export type SmtpErrorCode = Extract<FailureCode, `smtp_${string}` | 'rt_lost'>;

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
