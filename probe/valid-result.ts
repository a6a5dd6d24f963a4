/**
 * Whether what a check returned is a valid result of the wire schema, and if not, its first
 * problem (for the log and the failed result the runtime writes instead).
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { CHECK_DEFS, CHECK_TYPES, CheckResult, type CheckType } from '../protocol/checks/index.js';

const checkResult: TypeCheck<typeof CheckResult> = TypeCompiler.Compile(CheckResult);
const byType = new Map(CHECK_TYPES.map((t) => [t, TypeCompiler.Compile(CHECK_DEFS[t].result)]));

/** True if the value is a valid result of the wire schema. */
export function isCheckResult(v: unknown): v is CheckResult {
  return checkResult.Check(v);
}

/** The first schema problem of an invalid result, for the log. */
export function resultProblem(v: unknown): string {
  const e = checkResult.Errors(v).First();
  if (!e) return 'not an object';
  const type = typeof v === 'object' && v !== null && 'type' in v && typeof v.type === 'string' ? byType.get(v.type as CheckType) : undefined;
  const inner = type?.Errors(v).First();
  if (inner) return `${inner.path || '/'}: ${inner.message}`;
  return `${e.path || '/'}: ${e.message}`;
}
