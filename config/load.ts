/**
 * Load and validate the cutover plan once, at the edge. Every problem is reported as
 * `path: rule` (`cutover.servers[1].ip: must be an IPv4 or IPv6 address`); the result is
 * typed and frozen.
 */
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { isAlias, LineCounter, parseDocument, visit, type Alias } from 'yaml';
import { planFileProblems, readFile } from './files.js';
import { BOUND, Plan, parseDuration, parseSize, specFormatProblem, type Bound, type PlanConfig, type PlanInput } from './schema.js';
import { CATALOGUE, CATALOGUE_REGIONS, CATALOGUE_SELECTORS } from './catalogue.js';
import { HOSTNAME_PATTERN, parseResolverSpec, specProblem } from './specs.js';

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

const RESOLVER_ENTRY = 'must be a resolver spec (system, 8.8.8.8, tls://host, https://host/dns-query), { address, name } or { catalogue: group }';

/**
 * `probes.resolvers` entries checked before the schema, which can only say "no member of the union
 * matched": each entry's problem named at its own path (`probes.resolvers[2].catalogue: …`).
 */
function resolverEntryProblems(entries: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!Array.isArray(entries)) return out;
  entries.forEach((e: unknown, i) => {
    const at = `probes.resolvers[${i}]`;
    if (typeof e === 'string') {
      const p = e.length === 0 ? 'must not be empty' : e.length > 200 ? 'must be at most 200 characters' : specProblem(parseResolverSpec, e);
      if (p) out.set(at, p);
      return;
    }
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      out.set(at, RESOLVER_ENTRY);
      return;
    }
    const o = e as Record<string, unknown>;
    const known = 'catalogue' in o ? ['catalogue', 'ipv6'] : 'address' in o ? ['address', 'name'] : null;
    if (!known) {
      out.set(at, RESOLVER_ENTRY);
      return;
    }
    const extra = Object.keys(o).filter((k) => !known.includes(k));
    for (const k of extra) out.set(`${at}.${k}`, `is not a known key (known: ${known.join(', ')})`);
    if ('catalogue' in o) {
      if (typeof o.catalogue !== 'string' || !CATALOGUE_SELECTORS.includes(o.catalogue)) {
        out.set(`${at}.catalogue`, `must be all, a region (${CATALOGUE_REGIONS.join(', ')}) or an operator (${CATALOGUE.map((c) => c.id).join(', ')})`);
      }
      if (o.ipv6 !== undefined && typeof o.ipv6 !== 'boolean') out.set(`${at}.ipv6`, 'must be true or false');
      return;
    }
    const p =
      typeof o.address !== 'string' || o.address.length === 0 || o.address.length > 200
        ? 'must be a resolver spec of 1 to 200 characters'
        : specProblem(parseResolverSpec, o.address);
    if (p) out.set(`${at}.address`, p);
    if (o.name === undefined) out.set(`${at}.name`, 'is required');
    else if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 64) out.set(`${at}.name`, 'must be a name of 1 to 64 characters');
  });
  return out;
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
  const byName = new Map<string, string>();
  for (const r of plan.probes.resolvers) {
    const name = r.name ?? r.label;
    const other = byName.get(name);
    if (other !== undefined) out.push(`probes.resolvers: the name "${name}" is given to ${other} and ${r.label}; names must be unique`);
    else byName.set(name, r.label);
  }
  const receivers = new Map<string, number>();
  plan.probes.inbox?.mailboxes.forEach((m, i) => {
    const first = receivers.get(m.receiver);
    if (first !== undefined) out.push(`probes.inbox.mailboxes[${i}].receiver: must be unique (same as probes.inbox.mailboxes[${first}].receiver)`);
    else receivers.set(m.receiver, i);
    if (!m.imap.password_env === !m.imap.token_env) out.push(`probes.inbox.mailboxes[${i}].imap: must name one of password_env or token_env`);
  });
  return out;
}

/** Durations and sizes beyond their bound (or not above 0), walking the schema beside the input. */
function boundProblems(schema: unknown, value: unknown, path: string, out: string[]): string[] {
  const s = schema as { [BOUND]?: Bound; type?: string; properties?: Record<string, unknown>; items?: unknown };
  const b = s[BOUND];
  if (b && (typeof value === 'string' || typeof value === 'number')) {
    const n = b.kind === 'duration' ? parseDuration(String(value)) : parseSize(value);
    if (!(n > 0)) out.push(`${path}: ${value} must be more than 0`);
    else if (!(n <= b.max)) out.push(`${path}: ${value} is more than the limit of ${b.maxText}`);
  } else if (s.type === 'object' && s.properties && value && typeof value === 'object') {
    for (const [k, sub] of Object.entries(s.properties)) boundProblems(sub, (value as Record<string, unknown>)[k], path ? `${path}.${k}` : k, out);
  } else if (s.type === 'array' && s.items && Array.isArray(value)) {
    for (const [i, v] of value.entries()) boundProblems(s.items, v, `${path}[${i}]`, out);
  }
  return out;
}

/**
 * What is valid but probably not meant: a cutover window that has already ended. Printed by
 * `config check` and at the start of every command that loads the plan.
 */
export function planWarnings(plan: PlanConfig, now = Date.now()): string[] {
  const end = Date.parse(plan.cutover.window.end);
  if (end > now) return [];
  const days = Math.floor((now - end) / 86_400_000);
  const ago = days >= 1 ? `${days} day${days > 1 ? 's' : ''} ago` : `${Math.max(1, Math.round((now - end) / 60_000))} min ago`;
  return [
    `cutover.window: ended ${plan.cutover.window.end} (${ago}); probes run at probes.interval and no alert treats this as the window (move the window if the cutover is still ahead)`,
  ];
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

export interface ValidateOptions {
  /**
   * Check the files the plan names (exist, hold PEM that parses; config/files.ts). Default true;
   * the collector, which uses none of them, passes false.
   */
  files?: boolean;
}

/** Validates a parsed document; throws {@link ConfigError} naming every problem. */
export function validatePlan(input: unknown, source = 'plan', opts: ValidateOptions = {}): PlanConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new ConfigError(source, ['(root): must be a mapping with cutover, probes and collector']);
  const withDefaults = Value.Default(Plan, structuredClone(input)) as PlanInput;
  const entries = resolverEntryProblems((withDefaults as { probes?: { resolvers?: unknown } }).probes?.resolvers);
  const entryOf = (problem: string) => /^probes\.resolvers\[\d+\]/.exec(problem)?.[0];
  // The schema's "no member of the union matched" for a resolver entry gives way to the entry's own problems, in place.
  const problems: string[] = [];
  const listed = new Set<string | undefined>();
  for (const p of schemaProblems(withDefaults)) {
    const entry = entryOf(p);
    const own = [...entries].filter(([path]) => entryOf(path) === entry && entry !== undefined);
    if (own.length === 0) problems.push(p);
    else if (!listed.has(entry)) {
      listed.add(entry);
      problems.push(...own.map(([path, r]) => `${path}: ${r}`));
    }
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  const bounds = boundProblems(Plan, withDefaults, '', []);
  if (bounds.length > 0) throw new ConfigError(source, bounds);
  const plan = Value.Decode(Plan, withDefaults) as PlanConfig;
  const more = [...planProblems(plan), ...(opts.files === false ? [] : planFileProblems(plan))];
  if (more.length > 0) throw new ConfigError(source, more);
  return deepFreeze(plan);
}

/** Aliases expanded at most (a YAML alias bomb is refused, not expanded). */
const MAX_ALIASES = 100;

/**
 * Parses YAML text; every YAML problem is `line:col: message`, an alias bomb or a dangling alias
 * included, never an exception with a stack.
 */
export function parsePlan(text: string, source = 'plan', opts: ValidateOptions = {}): PlanConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  const at = (offset: number | undefined) => {
    const p = lineCounter.linePos(offset ?? 0);
    return `${p.line}:${p.col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map(
        (e) =>
          `${e.linePos?.[0] ? `${e.linePos[0].line}:${e.linePos[0].col}` : at(e.pos[0])}: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
      ),
    );
  }
  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    const aliases: Alias[] = [];
    visit(doc, { Alias: (_, node) => void (isAlias(node) && aliases.push(node)) });
    const message = (e as Error).message;
    const dangling = /^Unresolved alias[^:]*: (.*)$/.exec(message)?.[1];
    const alias = (dangling ? aliases.find((a) => a.source === dangling) : undefined) ?? aliases[0];
    const reason = dangling
      ? `alias *${dangling} names no anchor defined before it`
      : /alias count/i.test(message)
        ? `more than ${MAX_ALIASES} alias expansions (a YAML alias bomb?); write the repeated values out`
        : message;
    throw new ConfigError(source, [`${at(alias?.range?.[0])}: ${reason}`]);
  }
  return validatePlan(input, source, opts);
}

export async function loadPlan(file: string, opts: ValidateOptions = {}): Promise<PlanConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`(file) cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parsePlan(text, file, opts);
}

/** Plain JSON Schema for a format only this validator knows (the grammar's own reasons stay here). */
const EDITOR_FORMATS: Record<string, object> = {
  'mailprobe-hostname': { pattern: HOSTNAME_PATTERN },
  'date-time': { pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$' },
};

/** Drops what only TypeBox and this loader read, and makes fields that have a default optional. */
function editorSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(editorSchema);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'errorMessage' || k === BOUND) continue;
    if (k === 'format' && typeof v === 'string') {
      Object.assign(out, EDITOR_FORMATS[v] ?? {});
      continue;
    }
    out[k] = k === 'default' || k === 'const' || k === 'enum' ? v : editorSchema(v);
  }
  const props = out.properties as Record<string, { default?: unknown }> | undefined;
  if (Array.isArray(out.required) && props) {
    const required = (out.required as string[]).filter((r) => props[r]?.default === undefined);
    if (required.length > 0) out.required = required;
    else delete out.required;
  }
  return out;
}

/**
 * JSON Schema of the plan for editors (yaml-language-server) and other validators: every valid
 * plan passes it (fields with a default are optional); the rules it cannot state (the grammar's
 * reasons, bounds, files, rules across fields) are checked by `mailprobe config check`. The
 * committed copy is examples/plan.schema.json (a test keeps it current).
 */
export function planJsonSchema(): object {
  return editorSchema(JSON.parse(JSON.stringify(Plan))) as object;
}
