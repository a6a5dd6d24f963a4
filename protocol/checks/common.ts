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
import {
  METRICS,
  metricsOf,
  oneOfLabel,
  type KeyOfOrigin,
  type LabelName,
  type MetricKey,
  type MetricOf,
  type MetricType,
  type OneOfKey,
  type OneOfLabel,
} from '../metrics.js';

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

/** What an operation does to its series: observe (histogram), inc (counter), set (gauge), one-of (gauge, see `MetricDef.oneOf`). */
export type OpKind = 'observe' | 'inc' | 'set' | 'one-of';

interface OpBase {
  metric: MetricKey;
  labels: Labels;
  /** The time the check started, Unix ms (remote write sends it as the sample time). */
  ts: number;
}

/**
 * One operation as an object: what tests and the few rare paths write and read ({@link SampleOps.from},
 * {@link SampleOps.list}); ingest works on the columns of {@link SampleOps}.
 */
export type SampleOp =
  | (OpBase & { op: 'observe' | 'inc' | 'set'; value: number })
  /** Sets `labels + {[label]: value}` to 1 and removes the series of the label's other values. */
  | (OpBase & { op: 'one-of'; label: string; value: string });

export interface ProbeRef {
  id: string;
  region: string;
}

/** The metrics results feed, and the names of their labels. */
type ResultKey = KeyOfOrigin<'result'>;
export type LabelKey = LabelName<ResultKey>;

const RESULT_KEYS: readonly ResultKey[] = metricsOf('result');
/** Each label name of the result metrics → its slot in a label frame ({@link Ops}). */
const SLOT: Readonly<Record<string, number>> = Object.fromEntries(
  [...new Set(RESULT_KEYS.flatMap((k) => METRICS[k].labels as readonly string[]))].map((n, i) => [n, i]),
);
const FRAME_SIZE = Object.keys(SLOT).length;
/** Per result metric: the frame slot of each of its labels, in the catalogue's order. */
const SLOTS = new Map<MetricKey, readonly number[]>(RESULT_KEYS.map((k) => [k, (METRICS[k].labels as readonly string[]).map((n) => SLOT[n] as number)]));
/** Per one-of gauge: where its one-of label is among its labels. */
const ONE_OF_AT = new Map<MetricKey, number>(
  RESULT_KEYS.flatMap((k) => {
    const l = oneOfLabel(k);
    return l === undefined ? [] : [[k, (METRICS[k].labels as readonly string[]).indexOf(l)] as const];
  }),
);

/** Where a one-of gauge's own label is among its catalogue labels; -1 for other metrics. */
export const oneOfAt = (metric: MetricKey): number => ONE_OF_AT.get(metric) ?? -1;

/**
 * Sample operations as columns, without an object per operation or per label set: operation i
 * is `kind[i]` on `metric[i]` with `value[i]` at probe time `ts[i]`, and its label values are
 * `labels[start[i] + j]` for the j-th label of its metric's catalogue entry (absent: undefined).
 * A one-of operation holds its chosen value in the slot of its one-of label (`value` is 1).
 * Ingest keeps one buffer and {@link clear}s it per push, so the columns are reused, not rebuilt.
 */
export class SampleOps {
  /** Operations held. */
  length = 0;
  /** Label values held (the end of the last operation's). */
  size = 0;
  readonly kind: OpKind[] = [];
  readonly metric: MetricKey[] = [];
  readonly value: number[] = [];
  readonly ts: number[] = [];
  readonly start: number[] = [];
  readonly labels: (string | undefined)[] = [];

  /** Forgets the operations: the columns keep their room, not the label values (a request's strings die young). */
  clear(): void {
    this.labels.fill(undefined, 0, this.size);
    this.length = 0;
    this.size = 0;
  }

  #open(kind: OpKind, metric: MetricKey, value: number, ts: number): void {
    const i = this.length++;
    this.kind[i] = kind;
    this.metric[i] = metric;
    this.value[i] = value;
    this.ts[i] = ts;
    this.start[i] = this.size;
  }

  /** Appends an operation with its label values in the catalogue's order (a one-of's chosen value in its own label's place). */
  push(kind: OpKind, metric: MetricKey, value: number, ts: number, values: readonly (string | undefined)[]): void {
    this.#open(kind, metric, value, ts);
    for (const v of values) this.labels[this.size++] = v;
  }

  /** Appends an operation whose label values are the frame's, through `slots` (or `choice` at `at`). */
  pushFrame(
    kind: OpKind,
    metric: MetricKey,
    value: number,
    ts: number,
    frame: readonly (string | undefined)[],
    slots: readonly number[],
    at = -1,
    choice?: string,
  ): void {
    this.#open(kind, metric, value, ts);
    for (let j = 0; j < slots.length; j++) this.labels[this.size++] = j === at ? choice : frame[slots[j] as number];
  }

  /** A copy of the label values of operation i, in the catalogue's order. */
  labelsOf(i: number): (string | undefined)[] {
    const at = this.start[i] as number;
    return this.labels.slice(at, at + METRICS[this.metric[i] as MetricKey].labels.length);
  }

  /** Operation i as an object (the one-of label left out of `labels`, as {@link SampleOp} has it). */
  op(i: number): SampleOp {
    const metric = this.metric[i] as MetricKey;
    const names = METRICS[metric].labels as readonly string[];
    const at = oneOfAt(metric);
    const labels: Labels = {};
    const base = this.start[i] as number;
    for (let j = 0; j < names.length; j++) {
      const v = this.labels[base + j];
      if (j !== at && v !== undefined) labels[names[j] as string] = v;
    }
    const ts = this.ts[i] as number;
    const kind = this.kind[i] as OpKind;
    if (kind === 'one-of') return { op: kind, metric, labels, label: names[at] as string, value: this.labels[base + at] ?? '', ts };
    return { op: kind, metric, labels, value: this.value[i] as number, ts };
  }

  /** The operations as objects. */
  list(): SampleOp[] {
    const out: SampleOp[] = [];
    for (let i = 0; i < this.length; i++) out.push(this.op(i));
    return out;
  }

  *[Symbol.iterator](): IterableIterator<SampleOp> {
    for (let i = 0; i < this.length; i++) yield this.op(i);
  }

  /** Operations written as objects (labels by name; names not in the catalogue entry are dropped). */
  static from(ops: Iterable<SampleOp>, into = new SampleOps()): SampleOps {
    for (const op of ops) {
      const names = METRICS[op.metric].labels as readonly string[];
      const values = names.map((n) => (op.op === 'one-of' && n === op.label ? op.value : op.labels[n]));
      into.push(op.op, op.metric, op.op === 'one-of' ? 1 : op.value, op.ts, values);
    }
    return into;
  }
}

/** `success`, or the error class of a failed result (the `result` label). */
export function outcome(r: { ok: boolean; errorClass?: ErrorClass | undefined }): string {
  return r.ok ? 'success' : (r.errorClass ?? 'internal');
}

/** The result metrics of one type whose labels are all in `S`, one-of gauges apart (their own label is the value). */
type Ready<T extends MetricType, S extends string> = {
  [K in ResultKey]: K extends OneOfKey ? never : MetricOf<K>['type'] extends T ? ([Exclude<LabelName<K>, S>] extends [never] ? K : never) : never;
}[ResultKey];
/** The one-of gauges whose labels but their one-of label are all in `S`. */
type ReadyOneOf<S extends string> = {
  [K in OneOfKey]: [Exclude<LabelName<K>, S | OneOfLabel<K>>] extends [never] ? K : never;
}[OneOfKey];

/**
 * Writes the sample operations of one result, straight into the columns of a {@link SampleOps}:
 * no label object per operation or per result. Labels are set by name on a frame
 * (`ops.at('ip', r.ip)`), which keeps each value until it is set again, and an operation takes
 * the values of its metric's catalogue labels from it. The type says which labels are set
 * (`region` and `probe` from the start): an operation on a metric whose labels are not all set
 * does not compile, nor does a label name that no result metric has.
 */
export class Ops<S extends LabelKey = 'region' | 'probe'> {
  #buf: SampleOps = new SampleOps();
  #ts = 0;
  #probe = '';
  readonly #frame: (string | undefined)[] = new Array<string | undefined>(FRAME_SIZE).fill(undefined);

  /** Starts the operations of a result of `probe` that started at `ts` (Unix ms), appended to `into`. */
  begin(into: SampleOps, probe: ProbeRef, ts: number): Ops {
    this.#buf = into;
    this.#ts = ts;
    this.#probe = probe.id;
    this.#frame.fill(undefined);
    this.#frame[SLOT.region as number] = probe.region;
    this.#frame[SLOT.probe as number] = probe.id;
    return this as Ops;
  }

  /** The id of the probe that sent the result. */
  get probe(): string {
    return this.#probe;
  }

  /** Sets label `name` to `value` for the operations that follow. */
  at<N extends LabelKey>(name: N, value: string): Ops<S | N> {
    this.#frame[SLOT[name] as number] = value;
    return this as Ops<S | N>;
  }

  observe<K extends Ready<'histogram', S>>(metric: K, value: number): void {
    this.#buf.pushFrame('observe', metric, value, this.#ts, this.#frame, SLOTS.get(metric) as readonly number[]);
  }
  inc<K extends Ready<'counter', S>>(metric: K, value = 1): void {
    this.#buf.pushFrame('inc', metric, value, this.#ts, this.#frame, SLOTS.get(metric) as readonly number[]);
  }
  set<K extends Ready<'gauge', S>>(metric: K, value: number): void {
    this.#buf.pushFrame('set', metric, value, this.#ts, this.#frame, SLOTS.get(metric) as readonly number[]);
  }
  /** Sets the one-of gauge's series with its one-of label = `value` to 1 (see `MetricDef.oneOf`). */
  oneOf<K extends ReadyOneOf<S>>(metric: K, value: string): void {
    this.#buf.pushFrame('one-of', metric, 1, this.#ts, this.#frame, SLOTS.get(metric) as readonly number[], ONE_OF_AT.get(metric), value);
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
