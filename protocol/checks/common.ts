/**
 * What every check definition is made of: the bounded field types of results, the fields every
 * result shares (a failed check is data: `ok: false` with `phase`, `errorClass`, `code` and
 * `message`), the sample operations a result turns into, and the {@link CheckDef} shape that
 * `protocol/checks/<type>.ts` fills in once per check type.
 *
 * Strings that become label values are bounded here so the collector can reject before it
 * allocates a series.
 */
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { METRICS, type KeyOfType, type LabelsOf, type MetricKey, type OneOfKey, type OneOfLabels } from '../metrics.js';

/** Longest string accepted in a field that becomes a label value. */
export const LABEL_MAX = 256;
/** Longest free-text field (messages, banners, details). */
export const TEXT_MAX = 2048;

/** Cuts free text to {@link TEXT_MAX}. */
export const text = (s: string): string => (s.length > TEXT_MAX ? s.slice(0, TEXT_MAX) : s);

export const Label = (opts: { description?: string } = {}) => Type.String({ minLength: 1, maxLength: LABEL_MAX, ...opts });
export const Text = () => Type.String({ maxLength: TEXT_MAX });
export const Seconds = (description: string) => Type.Number({ minimum: 0, maximum: 86_400 * 30, description });

export const SIDES = ['old', 'new'] as const;
export const Side = Type.Union(SIDES.map((s) => Type.Literal(s)));
export type Side = Static<typeof Side>;

/** How a DNS answer set compares with the plan. */
export const ANSWER_SIDES = ['old', 'new', 'both', 'other', 'none', 'error'] as const;
export const AnswerSide = Type.Union(ANSWER_SIDES.map((s) => Type.Literal(s)));
export type AnswerSide = Static<typeof AnswerSide>;

/** Error classes of all checks; the collector uses them as the `result` label. */
export const ERROR_CLASSES = [
  // SMTP
  'connect_refused',
  'connect_timeout',
  'banner_timeout',
  'tls_error',
  'cert_invalid',
  'auth_failed',
  'temp_fail',
  'perm_fail',
  'protocol',
  'timeout',
  // DNS
  'servfail',
  'nxdomain',
  'refused',
  'bad_response',
  'network',
  // blocklists: the list refused to answer (127.255.255.x)
  'dnsbl_refused',
  // round trip, inbox
  'lost',
  // IMAP: the configured folder does not exist at the receiver
  'mailbox_missing',
  // a check threw, or could not run at all (a bug or a setup problem), reported rather than crashing the probe
  'internal',
] as const;
export const ErrorClass = Type.Union(ERROR_CLASSES.map((s) => Type.Literal(s)));
export type ErrorClass = Static<typeof ErrorClass>;

const base = {
  /** When the check started, Unix milliseconds. */
  startedAt: Type.Integer({ minimum: 0, maximum: 4_102_444_800_000, description: 'When the check started, Unix milliseconds (before 2100).' }),
  durationSeconds: Seconds('How long the whole check took.'),
  ok: Type.Boolean(),
  phase: Type.Optional(Type.String({ maxLength: 64, description: 'Where a failed check stopped.' })),
  errorClass: Type.Optional(ErrorClass),
  code: Type.Optional(Type.String({ maxLength: 64, description: 'Stable error code from the check catalogue.' })),
  message: Type.Optional(Text()),
};

/** The schema of one check type's result: the shared fields plus its own. */
export function resultSchema<T extends string, P extends TProperties>(type: T, props: P, description: string) {
  return Type.Object({ type: Type.Literal(type), ...base, ...props }, { additionalProperties: false, description });
}

/** The fields of a failed result (see protocol/failures.ts for the codes). */
export interface Failure {
  ok: false;
  phase: string;
  errorClass: ErrorClass;
  code: string;
  message: string;
}

/** A failed run: when it started, how long it took, and why it failed. */
export interface FailedRun {
  startedAt: number;
  durationSeconds: number;
  failure: Failure;
}

/** The shared fields of a failed result of a run. */
export function failedFields(run: FailedRun) {
  return { startedAt: run.startedAt, durationSeconds: Math.max(0, run.durationSeconds), ...run.failure };
}

// ---- sample operations ----

export type Labels = Record<string, string>;

interface OpBase {
  metric: MetricKey;
  labels: Labels;
  /** The time the check started, Unix ms (remote write sends it as the sample time). */
  ts: number;
}

export type SampleOp =
  | (OpBase & { op: 'observe' | 'inc' | 'set'; value: number })
  /** Sets `labels + {[label]: value}` to 1 and removes the series of the label's other values. */
  | (OpBase & { op: 'one-of'; label: string; value: string });

export interface ProbeRef {
  id: string;
  region: string;
}

/** `success`, or the error class of a failed result (the `result` label). */
export function outcome(r: { ok: boolean; errorClass?: ErrorClass | undefined }): string {
  return r.ok ? 'success' : (r.errorClass ?? 'internal');
}

/**
 * Collects the sample operations of one result. Each takes the labels of its metric's catalogue
 * entry (protocol/metrics.ts) and no other: a missing, misspelt or extra label does not compile.
 */
export class Ops {
  readonly list: SampleOp[] = [];
  constructor(
    /** `{ region, probe }` of the probe that sent the result. */
    readonly rp: { readonly region: string; readonly probe: string },
    readonly ts: number,
  ) {}
  observe<K extends KeyOfType<'histogram'>>(metric: K, labels: LabelsOf<K>, value: number): void {
    this.list.push({ op: 'observe', metric, labels, value, ts: this.ts });
  }
  inc<K extends KeyOfType<'counter'>>(metric: K, labels: LabelsOf<K>, value = 1): void {
    this.list.push({ op: 'inc', metric, labels, value, ts: this.ts });
  }
  set<K extends KeyOfType<'gauge'>>(metric: K, labels: LabelsOf<K>, value: number): void {
    this.list.push({ op: 'set', metric, labels, value, ts: this.ts });
  }
  /** Sets the one-of gauge's series `labels + {[its one-of label]: value}` to 1 (see `MetricDef.oneOf`). */
  oneOf<K extends OneOfKey>(metric: K, labels: OneOfLabels<K>, value: string): void {
    this.list.push({ op: 'one-of', metric, labels, label: METRICS[metric].oneOf, value, ts: this.ts });
  }
}

export const b = (v: boolean): number => (v ? 1 : 0);

// ---- the definition of one check type ----

/**
 * The settings a check type adds to the plan, by where they sit in it: `cutover` (facts of the
 * move it checks, such as the DKIM selectors), `probes` (its own section, such as `probes.smtp`)
 * and `probes.dns` (the section the DNS-side checks share). Written with the vocabulary of
 * protocol/settings.ts; config/schema.ts composes the plan from every definition's settings, and
 * no field may be claimed by two check types.
 */
export interface CheckSettings {
  readonly cutover?: TProperties;
  readonly probes?: TProperties;
  readonly 'probes.dns'?: TProperties;
}
export type SettingsSection = keyof CheckSettings;
export const SETTINGS_SECTIONS: readonly SettingsSection[] = ['cutover', 'probes', 'probes.dns'];

/**
 * Everything about one check type that probe and collector share. The probe side
 * (`probe/checks/<type>.ts`) adds how the plan expands into targets and how one target is run.
 */
export interface CheckDef<K extends string, S extends TObject, Target, Settings extends CheckSettings = CheckSettings> {
  readonly type: K;
  /** The wire schema of its results. */
  readonly result: S;
  /** The schema of its settings in the plan (`{}` when it has none of its own). */
  readonly settings: Settings;
  /**
   * The failed results of a run of `target` that returned none of its own (it timed out, threw,
   * returned garbage, or could not start): always buildable, so every target reports every
   * interval.
   */
  failed(target: Target, run: FailedRun): Static<S>[];
  /** A failed result in the series of an earlier result of the same target (same identity labels). */
  failedLike(previous: Static<S>, run: FailedRun): Static<S>;
  /** The metric samples a result feeds, besides `checks_total` (the metric mapping). */
  samples(r: Static<S>, ops: Ops): void;
}

/** Declares a check type (identity function that fixes the type parameters). */
export function defineCheck<K extends string, S extends TObject, Target, Settings extends CheckSettings>(
  def: CheckDef<K, S, Target, Settings>,
): CheckDef<K, S, Target, Settings> {
  return def;
}
