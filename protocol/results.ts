/**
 * Result types of every check, shared by probe and collector: re-exports of the definitions in
 * `protocol/checks/` (one file per check type) for the modules that only need the types.
 */
export {
  ANSWER_SIDES,
  AnswerSide,
  ERROR_CLASSES,
  ErrorClass,
  LABEL_MAX,
  SIDES,
  Side,
  TEXT_MAX,
  type Failure,
} from './checks/common.js';
export { AuthResult } from './checks/auth.js';
export { DnsResult } from './checks/dns.js';
export { DnsblResult } from './checks/dnsbl.js';
export { MtaResult, OTHER_NET } from './checks/mta.js';
export { RdnsResult } from './checks/rdns.js';
export { RoundtripResult, Verdict, VERDICTS } from './checks/roundtrip.js';
export { SMTP_PHASES, SmtpResult, type SmtpPhase } from './checks/smtp.js';
export { TtlResult } from './checks/ttl.js';
export { CHECK_TYPES, CheckResult, type CheckType, type ResultOf, type TargetOf } from './checks/index.js';
