/**
 * The check types, one definition each (`protocol/checks/<type>.ts`): its result schema, its
 * settings schema, how a failed run names its target, and its metric mapping. Everything else
 * derives from {@link CHECK_DEFS}: the check types, the result union of the wire format, the
 * checks' sections of the plan (config/schema.ts composes them with {@link settingsFields}), the
 * sample operations the collector applies. The probe's side of each check (targets and run)
 * lives in `probe/checks/<type>.ts`, registered in a map the compiler requires to be total over
 * {@link CheckType}. docs/adding-a-check.md walks through adding one.
 */
import { Type, type Static, type TProperties, type TSchema, type TUnion } from '@sinclair/typebox';
import { authDef } from './auth.js';
import { Ops, outcome, SampleOps, type CheckDef, type CheckSettings, type FailedRun, type ProbeRef, type SettingsSection } from './common.js';
import { dnsDef } from './dns.js';
import { dnsblDef } from './dnsbl.js';
import { mtaDef } from './mta.js';
import { inboxDef } from './inbox.js';
import { rdnsDef } from './rdns.js';
import { roundtripDef } from './roundtrip.js';
import { smtpDef } from './smtp.js';
import { ttlDef } from './ttl.js';

/** Every check type, keyed by its type (the order is the order of the wire schema's union). */
export const CHECK_DEFS = {
  dns: dnsDef,
  ttl: ttlDef,
  rdns: rdnsDef,
  auth: authDef,
  dnsbl: dnsblDef,
  smtp: smtpDef,
  roundtrip: roundtripDef,
  mta: mtaDef,
  inbox: inboxDef,
} as const;

type Defs = typeof CHECK_DEFS;
export type CheckType = keyof Defs;
/** The result type of one check type. */
export type ResultOf<K extends CheckType> = Static<Defs[K]['result']>;
/** The target type of one check type (what its failed results are named after). */
export type TargetOf<K extends CheckType> = Parameters<Defs[K]['failed']>[0];

// Each definition is filed under its own type: `dns: smtpDef` does not compile; one without
// a result schema, settings (`{}` at least), failed results or a metric mapping neither.
type Filed = { [K in CheckType]: CheckDef<K, Defs[K]['result'], TargetOf<K>, Defs[K]['settings']> };
const filed: Filed = CHECK_DEFS;
void filed;

export const CHECK_TYPES = Object.keys(CHECK_DEFS) as CheckType[];

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** The fields every check type adds to one section of the plan, merged (their schemas keep their types). */
export type SettingsFields<S extends SettingsSection> = UnionToIntersection<
  { [K in CheckType]: S extends keyof Defs[K]['settings'] ? Defs[K]['settings'][S] : Record<never, never> }[CheckType]
>;

/**
 * The fields `defs` add to one section of the plan, by name (so the plan's field order, and the
 * `known:` list of an unknown-key error, do not move when a check type is added). A field
 * claimed by two check types is a bug in the definitions: it throws when the module loads.
 */
export function mergeSettings(defs: readonly { type: string; settings: CheckSettings }[], section: SettingsSection): TProperties {
  const owner = new Map<string, string>();
  const fields: [string, TSchema][] = [];
  for (const def of defs) {
    for (const [name, schema] of Object.entries(def.settings[section] ?? {})) {
      const first = owner.get(name);
      if (first !== undefined) throw new Error(`${section}.${name} is claimed by the check types ${first} and ${def.type}`);
      owner.set(name, def.type);
      fields.push([name, schema]);
    }
  }
  return Object.fromEntries(fields.sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The fields every check type adds to `section` of the plan (config/schema.ts spreads them into it). */
export function settingsFields<S extends SettingsSection>(section: S): SettingsFields<S> {
  return mergeSettings(Object.values(CHECK_DEFS), section) as SettingsFields<S>;
}

export const CheckResult = Type.Union(CHECK_TYPES.map((t) => CHECK_DEFS[t].result)) as unknown as TUnion<Defs[CheckType]['result'][]>;
export type CheckResult = { [K in CheckType]: ResultOf<K> }[CheckType];

/** A definition seen through one type parameter (TypeScript cannot correlate `defs[r.type]` with `r` itself). */
function defOf<K extends CheckType>(type: K): CheckDef<K, Defs[K]['result'], TargetOf<K>> {
  return (CHECK_DEFS as Filed)[type];
}

/** The failed results of a run of `target` that returned none of its own. */
export function failedResults<K extends CheckType>(type: K, target: TargetOf<K>, run: FailedRun): ResultOf<K>[] {
  return defOf(type).failed(target, run);
}

/** A failed result in the series of an earlier result. */
export function failedLike<K extends CheckType>(previous: ResultOf<K> & { type: K }, run: FailedRun): ResultOf<K> {
  return defOf(previous.type).failedLike(previous, run);
}

/** Writes the operations of each result; one writer serves every call (they never overlap: ops are written synchronously). */
const writer = new Ops();

/**
 * The sample operations one result produces: `checks_total`, then its type's metric mapping.
 * Appended to `into` (ingest passes the buffer it reuses per push), else to a new buffer.
 */
export function resultOps(probe: ProbeRef, r: CheckResult, into: SampleOps = new SampleOps()): SampleOps {
  writer.begin(into, probe, r.startedAt).at('type', r.type).at('result', outcome(r)).inc('checks');
  // Labels set for checks_total are not the definition's: its frame starts again from region and probe.
  samplesOf(r.type, r, writer.begin(into, probe, r.startedAt));
  return into;
}

function samplesOf<K extends CheckType>(type: K, r: ResultOf<K>, ops: Ops): void {
  defOf(type).samples(r, ops);
}
