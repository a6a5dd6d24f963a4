/**
 * Load and validate the cutover plan once, at the edge. Every problem is reported as
 * `path: rule` (`cutover.servers[1].ip: must be an IPv4 or IPv6 address`); the result is
 * typed and frozen.
 */
import { readFile } from 'node:fs/promises';
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { parseDocument } from 'yaml';
import { Plan, specFormatProblem, type PlanConfig, type PlanInput } from './schema.js';

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: invalid plan\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `/cutover/servers/1/ip` → `cutover.servers[1].ip`. */
export function formatPath(pointer: string): string {
  if (pointer === '' || pointer === '/') return '(root)';
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

function rule(e: ValueError): string {
  const custom = (e.schema as { errorMessage?: unknown }).errorMessage;
  const format = (e.schema as { format?: unknown }).format;
  if (e.type === ValueErrorType.StringFormat && typeof format === 'string') {
    const problem = specFormatProblem(format, e.value);
    if (problem) return problem;
  }
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ArrayMinItems:
    case ValueErrorType.ArrayMaxItems:
      return typeof custom === 'string' ? custom : e.message.replace(/^Expected/, 'must have');
    default:
      if (typeof custom === 'string') return custom;
      return e.message.replace(/^Expected/, 'must be').replace(/^Unexpected/, 'must not be');
  }
}

/** Schema problems, one per path, in document order. */
function schemaProblems(value: unknown): string[] {
  const byPath = new Map<string, string>();
  for (const e of Value.Errors(Plan, value)) {
    if (e.type === ValueErrorType.ObjectAdditionalProperties) {
      const schema = e.schema as { properties?: Record<string, unknown>; errorMessage?: string };
      const known = Object.keys(schema.properties ?? {});
      byPath.set(e.path, schema.errorMessage ?? (known.length > 0 ? `is not a known key (known: ${known.join(', ')})` : 'is not a known key'));
    } else if (e.type === ValueErrorType.ObjectRequiredProperty) {
      // A missing property also fails its own type check; "is required" says it better.
      byPath.set(e.path, 'is required');
    } else if (!byPath.has(e.path)) {
      byPath.set(e.path, rule(e));
    }
  }
  return [...byPath].map(([p, r]) => `${formatPath(p)}: ${r}`);
}

/** Rules that span fields, run after the schema holds. */
function planProblems(plan: PlanConfig): string[] {
  const out: string[] = [];
  const c = plan.cutover;
  const sides = new Set(c.servers.map((s) => s.side));
  if (!sides.has('old')) out.push('cutover.servers: must include a server with side: old');
  if (!sides.has('new')) out.push('cutover.servers: must include a server with side: new');
  const ips = new Map<string, number>();
  c.servers.forEach((s, i) => {
    const first = ips.get(s.ip);
    if (first !== undefined) out.push(`cutover.servers[${i}].ip: must be unique (same as cutover.servers[${first}].ip)`);
    else ips.set(s.ip, i);
  });
  if (Date.parse(c.window.end) <= Date.parse(c.window.start)) out.push('cutover.window.end: must be after cutover.window.start');
  if (plan.probes.window_interval > plan.probes.interval) out.push('probes.window_interval: must not be longer than probes.interval');
  if (plan.probes.timeout > plan.probes.window_interval) out.push('probes.timeout: must not be longer than probes.window_interval');
  return out;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

/** Validates a parsed document; throws {@link ConfigError} naming every problem. */
export function validatePlan(input: unknown, source = 'plan'): PlanConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ConfigError(source, ['(root): must be a mapping with cutover, probes and collector']);
  const withDefaults = Value.Default(Plan, structuredClone(input)) as PlanInput;
  const problems = schemaProblems(withDefaults);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const plan = Value.Decode(Plan, withDefaults) as PlanConfig;
  const more = planProblems(plan);
  if (more.length > 0) throw new ConfigError(source, more);
  return deepFreeze(plan);
}

/** Parses YAML text; YAML syntax errors name the line. */
export function parsePlan(text: string, source = 'plan'): PlanConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(source, doc.errors.map((e) => `(yaml) ${e.message.split('\n')[0]}`));
  return validatePlan(doc.toJS({ maxAliasCount: 100 }), source);
}

export async function loadPlan(file: string): Promise<PlanConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`(file) cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parsePlan(text, file);
}

/** JSON Schema of the plan for editors (yaml-language-server). */
export function planJsonSchema(): object {
  return JSON.parse(JSON.stringify(Plan)) as object;
}
