/**
 * The collector's series store: the result series (everything the probes' results feed), held
 * in a structure made for this one job instead of prom-client's general-purpose metrics.
 *
 * - A series is interned once per metric family by its rendered label body (`a="x",b="y"`, the
 *   catalogue's label order, values escaped): that string is its key, the text every exposition
 *   line of it carries, and all the label state it keeps. No label objects are kept per series.
 * - A counter or gauge keeps its value; a histogram its per-bucket counts, sum and count. Lines
 *   are rendered from these and the family's pre-rendered prefixes (`name_bucket{le="0.5",`), so
 *   a scrape only concatenates.
 * - `/metrics` streams the store in bounded slices of ~64 KiB ({@link SeriesStore.stream}) and
 *   yields to the event loop between slices, so a push waits for at most one slice, never a
 *   whole scrape.
 *   The same store renders the classic text format and OpenMetrics (counters: family name
 *   without `_total`, samples with it). Within a family the set of series is the one at the
 *   moment the family's slice run began (a one-of gauge switching mid-scrape is shown on one
 *   side only), values are current.
 * - The silent-probe sweep and the per-probe series limit (collector/ingest.ts) remove and count
 *   series here; remote write reads the same values (collector/outputs/remote-write/).
 *
 * The exposition equals what prom-client rendered from the same operations (same series, same
 * values, the same label sets; test/collector/store.test.ts checks it on real pushes).
 */
import { METRICS, metricsOf, oneOfLabel, type MetricDef, type MetricKey } from '../../protocol/metrics.js';
import type { Labels, SampleOp } from '../samples.js';
import type { Output } from '../outputs/output.js';

/** Metrics the results feed (the catalogue's `origin: 'result'`). */
export const RESULT_METRICS: readonly MetricKey[] = metricsOf('result');

export const CLASSIC_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** A sample value as the text formats write it (prom-client's spelling, `Nan` included). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return `${v}`;
}

const NEEDS_ESCAPE = /[\\\n"]/;
const escapeLabel = (v: string): string => (NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v);
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** One series: its label body (also its key) and its state. */
export class Series {
  /** Counter total or gauge value. */
  value = 0;
  /** Histogram: observations per bucket (not cumulative), the last one +Inf only. */
  readonly buckets: number[] | undefined;
  sum = 0;
  count = 0;
  /** Probe time (Unix ms) of the newest operation applied. */
  ts = Number.NEGATIVE_INFINITY;
  /** Remote write: time of the last sample queued for this series (collector/outputs/remote-write.ts). */
  sentTs = Number.NEGATIVE_INFINITY;
  /** Set once the series left the store (removed, swept); a holder of the reference can tell. */
  removed = false;

  constructor(
    readonly family: Family,
    /** `a="x",b="y"`: the catalogue's label order, values escaped; empty without labels. */
    readonly body: string,
  ) {
    this.buckets = family.bounds ? new Array<number>(family.bounds.length + 1).fill(0) : undefined;
  }
}

/** One metric of the catalogue: its series and its pre-rendered text. */
export class Family {
  readonly def: MetricDef;
  readonly name: string;
  readonly labelNames: readonly string[];
  readonly series = new Map<string, Series>();
  /** One-of gauges: the exclusive label, and body without it → the series currently set. */
  readonly exclusive: string | undefined;
  readonly current = new Map<string, Series>();
  readonly bounds: readonly number[] | undefined;
  /** `name_bucket{le="<bound>"` per bound, then +Inf. */
  readonly bucketHeads: readonly string[] = [];
  readonly header: string;
  readonly omHeader: string;
  /** Per label, in the catalogue's order: `name="` to open a body, `,name="` after another label. */
  readonly #openers: readonly string[];
  readonly #separators: readonly string[];

  constructor(readonly key: MetricKey) {
    this.def = METRICS[key] as MetricDef;
    this.name = this.def.name;
    this.labelNames = this.def.labels;
    this.exclusive = oneOfLabel(key);
    this.#openers = this.labelNames.map((n) => `${n}="`);
    this.#separators = this.labelNames.map((n) => `,${n}="`);
    this.bounds = this.def.type === 'histogram' ? [...(this.def.buckets ?? [])] : undefined;
    if (this.bounds) this.bucketHeads = [...this.bounds.map((b) => `${this.name}_bucket{le="${b}"`), `${this.name}_bucket{le="+Inf"`];
    const help = escapeHelp(this.def.help);
    this.header = `# HELP ${this.name} ${help}\n# TYPE ${this.name} ${this.def.type}\n`;
    const omName = this.def.type === 'counter' ? this.name.replace(/_total$/, '') : this.name;
    this.omHeader = `# HELP ${omName} ${help}\n# TYPE ${omName} ${this.def.type}\n`;
  }

  /**
   * The label body of `labels` (names of the catalogue, in its order; absent ones left out),
   * without label `skip`, or with `label` set to `value`.
   */
  body(labels: Labels, skip?: string, label?: string, value?: string): string {
    // Built of few pieces (`,name="` is one): Map flattens the string to hash it, once per sample.
    let out = '';
    const names = this.labelNames;
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as string;
      const v = n === skip ? undefined : n === label ? value : labels[n];
      if (v === undefined) continue;
      out += `${out === '' ? this.#openers[i] : this.#separators[i]}${escapeLabel(v)}"`;
    }
    return out;
  }

  /** The series of these labels (arguments as for {@link body}), if the family holds it. */
  find(labels: Labels, skip?: string, label?: string, value?: string): Series | undefined {
    return this.series.get(this.body(labels, skip, label, value));
  }

  /** The exposition lines of one series. */
  lines(s: Series): string {
    const b = s.body;
    if (!s.buckets) return b === '' ? `${this.name} ${formatValue(s.value)}\n` : `${this.name}{${b}} ${formatValue(s.value)}\n`;
    const tail = b === '' ? '} ' : `,${b}} `;
    const braced = b === '' ? ' ' : `{${b}} `;
    let out = '';
    let cum = 0;
    const heads = this.bucketHeads;
    for (let i = 0; i < s.buckets.length - 1; i++) {
      cum += s.buckets[i] ?? 0;
      out += `${heads[i]}${tail}${cum}\n`;
    }
    out += `${heads[s.buckets.length - 1]}${tail}${s.count}\n`;
    out += `${this.name}_sum${braced}${formatValue(s.sum)}\n`;
    out += `${this.name}_count${braced}${s.count}\n`;
    return out;
  }
}

/** The label set of a rendered body (for the few readers that want objects: the lab view, remote write's wire labels). */
export function parseBody(body: string): Labels {
  const out: Labels = {};
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf('="', i);
    const name = body.slice(i, eq);
    let j = eq + 2;
    let v = '';
    while (j < body.length && body[j] !== '"') {
      if (body[j] === '\\') {
        const c = body[j + 1];
        v += c === 'n' ? '\n' : (c ?? '');
        j += 2;
      } else v += body[j++];
    }
    out[name] = v;
    i = j + 2; // past `",`
  }
  return out;
}

/**
 * What a scrape renders per slice before yielding: about this many characters (~500 lines).
 * A slice is a rope of small strings that V8 flattens when the stream turns it into bytes, which
 * costs more than rendering it. At this size the flat copy stays in the young generation (under
 * 128 KiB) and is made in cache: in isolation, rendering and converting 100k series took ~25 ms
 * of CPU in such slices and ~38 ms in slices of 4 096 lines (~600 KiB), whose copies also made
 * the scavenges pause ~3× longer (4-5 ms instead of 1.5 ms).
 */
const SLICE_CHARS = 64 * 1024;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface StoreListener {
  /** A series got a new value from an operation at probe time `ts`. */
  changed(s: Series, ts: number): void;
  /** A series left the store: a one-of switch at probe time `ts`, or a removal (sweep, region move) without one. */
  removed(s: Series, ts: number | undefined): void;
  /** The operations of one {@link SeriesStore.apply} call are all applied. */
  applied(): void;
}

export class SeriesStore implements Output {
  readonly name = 'series-store';
  readonly #families = new Map<MetricKey, Family>();
  readonly #listeners: StoreListener[] = [];
  #size = 0;

  constructor(metrics: readonly MetricKey[] = RESULT_METRICS) {
    for (const k of metrics) this.#families.set(k, new Family(k));
  }

  /** Series held (histograms count once). */
  get size(): number {
    return this.#size;
  }

  families(): IterableIterator<Family> {
    return this.#families.values();
  }

  /** The family of a metric of the store, if it holds that metric. */
  family(metric: MetricKey): Family | undefined {
    return this.#families.get(metric);
  }

  /** Called on every change and removal (remote write keeps its send state this way). */
  listen(l: StoreListener): void {
    this.#listeners.push(l);
  }

  /** The series of `metric` with `labels`, created when absent. */
  #series(f: Family, body: string): Series {
    let s = f.series.get(body);
    if (!s) {
      // Built by concatenation, the body is a tree of the request's strings: held flat, it costs
      // its characters only (JSON's round trip keeps every code unit, lone surrogates too).
      const flat = JSON.parse(JSON.stringify(body)) as string;
      s = new Series(f, flat);
      f.series.set(flat, s);
      this.#size++;
    }
    return s;
  }

  /** The series the caller looked up already (unless it left the store since), else the one of `labels`. */
  #known(f: Family, labels: Labels, found: Series | undefined): Series {
    return found !== undefined && !found.removed ? found : this.#series(f, f.body(labels));
  }

  /** The series of `metric` with `labels`, if held. */
  get(metric: MetricKey, labels: Labels): Series | undefined {
    const f = this.#families.get(metric);
    return f?.series.get(f.body(labels));
  }

  /**
   * Applies sample operations. Counters add and histograms observe whatever the order; a gauge
   * (and a one-of gauge's choice) keeps the value of the newest check: an operation older (by
   * probe time) than the one the series holds, a spool replayed late, changes nothing.
   * `found[i]`: the series of operation i when the caller looked it up already (not for
   * one-of), so its body is neither rendered nor hashed twice; `touched[i]` receives the
   * series operation i is about (the current one of a one-of gauge); `groups[i]`: the body
   * without the one-of label of one-of operation i, when the caller rendered it already.
   */
  apply(ops: readonly SampleOp[], found?: readonly (Series | undefined)[], touched?: (Series | undefined)[], groups?: readonly (string | undefined)[]): void {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as SampleOp;
      const f = this.#families.get(op.metric);
      if (!f) continue;
      let s: Series;
      switch (op.op) {
        case 'inc':
          s = this.#known(f, op.labels, found?.[i]);
          s.value += op.value;
          break;
        case 'set':
          s = this.#known(f, op.labels, found?.[i]);
          if (touched) touched[i] = s;
          if (op.ts < s.ts) continue;
          s.value = op.value;
          break;
        case 'observe': {
          s = this.#known(f, op.labels, found?.[i]);
          const bounds = f.bounds ?? [];
          let b = 0;
          while (b < bounds.length && op.value > (bounds[b] as number)) b++;
          if (s.buckets) s.buckets[b] = (s.buckets[b] ?? 0) + 1;
          s.sum += op.value;
          s.count += 1;
          break;
        }
        case 'one-of': {
          const key = groups?.[i] ?? f.body(op.labels, op.label);
          const cur = f.current.get(key);
          if (cur && !cur.removed && op.ts < cur.ts) {
            if (touched) touched[i] = cur;
            continue;
          }
          // The value's body is rendered once: to compare with the current one and, when it
          // differs, to look the new series up.
          const body = f.body(op.labels, undefined, op.label, op.value);
          if (cur && !cur.removed && cur.body !== body) this.#drop(cur, op.ts);
          s = cur && !cur.removed ? cur : this.#series(f, body);
          s.value = 1;
          if (cur !== s) f.current.set(key, s);
          break;
        }
      }
      if (op.ts > s.ts) s.ts = op.ts;
      if (touched) touched[i] = s;
      for (const l of this.#listeners) l.changed(s, op.ts);
    }
    for (const l of this.#listeners) l.applied();
  }

  remove(metric: MetricKey, labels: Labels): void {
    const f = this.#families.get(metric);
    if (!f) return;
    const s = f.series.get(f.body(labels));
    if (s) this.drop(s);
  }

  /** Removes a series (and, for a one-of gauge, forgets which value is current). */
  drop(s: Series): void {
    if (s.removed) return;
    const f = s.family;
    if (f.exclusive) {
      const key = f.body(parseBody(s.body), f.exclusive);
      if (f.current.get(key) === s) f.current.delete(key);
    }
    this.#drop(s, undefined);
  }

  #drop(s: Series, ts: number | undefined): void {
    if (s.removed) return;
    s.removed = true;
    s.family.series.delete(s.body);
    this.#size--;
    for (const l of this.#listeners) l.removed(s, ts);
  }

  /**
   * The exposition of the store, in slices of about {@link SLICE_CHARS} characters, yielding to
   * the event loop after each slice, so a push waits for one slice at most. Small families share
   * a slice. Classic text separates families by a blank line (as prom-client did); OpenMetrics
   * has none and no `# EOF` (the caller ends the whole exposition).
   */
  async *stream(om: boolean): AsyncGenerator<string> {
    let out = '';
    let first = true;
    for (const f of this.#families.values()) {
      const members = [...f.series.values()];
      out += om || first ? (om ? f.omHeader : f.header) : `\n${f.header}`;
      first = false;
      for (const s of members) {
        out += f.lines(s);
        if (out.length >= SLICE_CHARS) {
          yield out;
          out = '';
          await nextTurn();
        }
      }
    }
    if (out !== '') yield out;
  }

  /** The whole exposition as one string (tests, the Pushgateway's bench groups). */
  async text(om = false): Promise<string> {
    let out = '';
    for await (const part of this.stream(om)) out += part;
    return out;
  }

  /** The store in prom-client's `getMetricsAsJSON()` shape (the lab's terminal view reads it). */
  toJSON(): { name: string; help: string; type: string; values: { labels: Record<string, string | number>; value: number; metricName?: string }[] }[] {
    const out = [];
    for (const f of this.#families.values()) {
      const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = [];
      for (const s of f.series.values()) {
        const labels = parseBody(s.body);
        if (!s.buckets) {
          values.push({ labels, value: s.value });
          continue;
        }
        let cum = 0;
        (f.bounds ?? []).forEach((le, i) => {
          cum += s.buckets?.[i] ?? 0;
          values.push({ labels: { ...labels, le }, value: cum, metricName: `${f.name}_bucket` });
        });
        values.push({ labels: { ...labels, le: '+Inf' }, value: s.count, metricName: `${f.name}_bucket` });
        values.push({ labels, value: s.sum, metricName: `${f.name}_sum` });
        values.push({ labels, value: s.count, metricName: `${f.name}_count` });
      }
      out.push({ name: f.name, help: f.def.help, type: f.def.type, values });
    }
    return out;
  }

  async close(): Promise<void> {}
}
