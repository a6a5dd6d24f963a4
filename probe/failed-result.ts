/**
 * Results the runtime writes for a check that timed out, threw or returned garbage: the
 * result of the check's type, its identity fields (resolver, ip, side...) taken from the job's
 * target and settings where they carry them, every other required field neutral (empty list,
 * false, null, "error"), and the failure fields. Validated against the wire schema like any
 * result.
 */
import { TypeGuard, type TSchema, type TObject } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import {
  AuthResult,
  CheckResult,
  DnsblResult,
  DnsResult,
  RdnsResult,
  RoundtripResult,
  SmtpResult,
  TtlResult,
  type CheckType,
} from '../protocol/results.js';

const SCHEMAS: Record<CheckType, TObject> = {
  dns: DnsResult,
  ttl: TtlResult,
  rdns: RdnsResult,
  auth: AuthResult,
  dnsbl: DnsblResult,
  smtp: SmtpResult,
  roundtrip: RoundtripResult,
};

const BASE = new Set(['type', 'startedAt', 'durationSeconds', 'ok', 'phase', 'errorClass', 'code', 'message']);

const checkResult: TypeCheck<typeof CheckResult> = TypeCompiler.Compile(CheckResult);
const propChecks = new Map<TSchema, TypeCheck<TSchema>>();

function propCheck(schema: TSchema): TypeCheck<TSchema> {
  let c = propChecks.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    propChecks.set(schema, c);
  }
  return c;
}

/** True if the value is a valid result of the wire schema. */
export function isCheckResult(v: unknown): v is CheckResult {
  return checkResult.Check(v);
}

/** The first schema problem of an invalid result, for the log. */
export function resultProblem(v: unknown): string {
  const e = checkResult.Errors(v).First();
  if (!e) return 'not an object';
  const type = typeof v === 'object' && v !== null && 'type' in v && typeof v.type === 'string' && v.type in SCHEMAS ? v.type : undefined;
  if (type) {
    const inner = TypeCompiler.Compile(SCHEMAS[type as CheckType]).Errors(v).First();
    if (inner) return `${inner.path || '/'}: ${inner.message}`;
  }
  return `${e.path || '/'}: ${e.message}`;
}

function neutral(schema: TSchema): unknown {
  if (TypeGuard.IsArray(schema)) return [];
  if (TypeGuard.IsBoolean(schema)) return false;
  if (TypeGuard.IsNumber(schema) || TypeGuard.IsInteger(schema)) return typeof schema.minimum === 'number' ? schema.minimum : 0;
  if (TypeGuard.IsObject(schema)) return {};
  if (TypeGuard.IsString(schema)) return typeof schema.minLength === 'number' && schema.minLength > 0 ? undefined : '';
  if (TypeGuard.IsUnion(schema)) {
    if (schema.anyOf.some((s) => TypeGuard.IsNull(s))) return null;
    const literals = schema.anyOf.filter((s) => TypeGuard.IsLiteral(s)).map((s) => s.const);
    if (literals.includes('error')) return 'error';
    return literals[0];
  }
  return undefined;
}

function pick(from: unknown, key: string): unknown {
  return typeof from === 'object' && from !== null && key in from ? (from as Record<string, unknown>)[key] : undefined;
}

export interface FailureFields {
  ok: false;
  phase: string;
  errorClass: CheckResult['errorClass'];
  code: string;
  message: string;
}

/**
 * A failed result of `type` for a job, or undefined when the target does not carry the fields
 * the result needs to be valid (the runtime then only logs and counts the failure).
 */
export function failedResult(type: CheckType, target: unknown, settings: unknown, startedAt: number, durationSeconds: number, f: FailureFields): CheckResult | undefined {
  const schema = SCHEMAS[type];
  const out: Record<string, unknown> = { type, startedAt, durationSeconds: Math.max(0, durationSeconds), ...f };
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (BASE.has(key)) continue;
    const given = [pick(target, key), pick(settings, key)].find((v) => v !== undefined && propCheck(prop).Check(v));
    if (given !== undefined) out[key] = given;
    else if (!TypeGuard.IsOptional(prop)) {
      const v = neutral(prop);
      if (v !== undefined) out[key] = v;
    }
  }
  return isCheckResult(out) ? out : undefined;
}

/**
 * Failed results shaped like the results a job returned last time (same resolver, name, record
 * type, IP...): its string and enum fields are kept, every measurement is neutral. So a check
 * that once answered keeps its series when it later times out or throws.
 */
export function failedLike(templates: readonly CheckResult[], startedAt: number, durationSeconds: number, f: FailureFields): CheckResult[] {
  const out: CheckResult[] = [];
  for (const t of templates) {
    const schema = SCHEMAS[t.type];
    const r: Record<string, unknown> = { type: t.type, startedAt, durationSeconds: Math.max(0, durationSeconds), ...f };
    for (const [key, prop] of Object.entries(schema.properties)) {
      if (BASE.has(key)) continue;
      const v = (t as Record<string, unknown>)[key];
      const literals = TypeGuard.IsUnion(prop) ? prop.anyOf.filter((s) => TypeGuard.IsLiteral(s)).map((s) => s.const) : [];
      const identity = TypeGuard.IsString(prop) || (literals.length > 0 && !literals.includes('error')) || key === 'port';
      if (identity && v !== undefined) r[key] = v;
      else if (!TypeGuard.IsOptional(prop)) {
        const n = neutral(prop);
        if (n !== undefined) r[key] = n;
      }
    }
    if (isCheckResult(r)) out.push(r);
  }
  return out;
}
