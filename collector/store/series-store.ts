/**
 * The collector's series store: the result series (everything the probes' results feed), held
 * in a structure made for this one job instead of prom-client's general-purpose metrics.
 *
 * - A series keeps its rendered label body (`a="x",b="y"`, the catalogue's label order, values
 *   escaped): the text every exposition line of it carries, and all the label state it keeps. No
 *   label objects are kept per series.
 * - It is found by a short key: each label value is interned once as a small integer
 *   ({@link LabelIds}), and a series' key is its values' ids, one or two UTF-16 code units each.
 *   Looking a series up hashes that key (a few characters) and the label values (their hashes
 *   are cached in the strings, which a result's operations share), instead of building, flattening
 *   and hashing the whole body for every operation: the lookup was the largest cost of ingest.
 *   An id is counted by the series whose keys hold it and freed with the last of them, so the
 *   table holds only the values of series in the store.
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
import { METRICS, metricsOf, type MetricDef, type MetricKey } from '../../protocol/metrics.js';
import { oneOfAt, type Labels, type SampleOps } from '../samples.js';
import type { Output } from '../outputs/output.js';
import { escapeHelp, escapeLabel, formatValue } from '../../protocol/exposition.js';

/** Metrics the results feed (the catalogue's `origin: 'result'`). */
export const RESULT_METRICS: readonly MetricKey[] = metricsOf('result');

export const CLASSIC_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/**
 * Label values → small integers, shared by the families of one store. An id is held by every
 * series whose key contains it and freed (for reuse) when the last of them leaves, so the table
 * never holds more than the live series' values, whatever the probes send over time.
 */
export class LabelIds {
  readonly #ids = new Map<string, number>();
  /** Id → value; id 0 is no id (an absent label is the code unit 0 in a key). */
  readonly #values: (string | undefined)[] = [undefined];
  readonly #holders: number[] = [0];
  readonly #free: number[] = [];

  /** Values interned now. */
  get size(): number {
    return this.#ids.size;
  }

  /** The id of `v`, if a series holds it. */
  get(v: string): number | undefined {
    return this.#ids.get(v);
  }

  /** The id of `v` for one more holder (interned when new). */
  hold(v: string): number {
    let id = this.#ids.get(v);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#values.length;
      this.#ids.set(v, id);
      this.#values[id] = v;
      this.#holders[id] = 0;
    }
    this.#holders[id] = (this.#holders[id] ?? 0) + 1;
    return id;
  }

  /** One holder of `id` is gone; the last one frees it. */
  release(id: number): void {
    const n = (this.#holders[id] ?? 0) - 1;
    this.#holders[id] = n;
    if (n > 0) return;
    const v = this.#values[id];
    if (v !== undefined) this.#ids.delete(v);
    this.#values[id] = undefined;
    this.#free.push(id);
  }
}

/** An id in a key: one code unit below 0x8000, else two (the first ≥ 0x8000): keys stay unambiguous. */
const idChars = (id: number): string => (id < 0x8000 ? String.fromCharCode(id) : String.fromCharCode(0x8000 | (id >>> 15), id & 0x7fff));

/** The ids a key holds (absent labels, code unit 0, hold none). */
function keyIds(key: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0) continue;
    out.push(c < 0x8000 ? c : ((c & 0x7fff) << 15) | key.charCodeAt(++i));
  }
  return out;
}

/** One series: its label body, its key in its family, and its state. */
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
    /** Its label values' ids ({@link Family.keyOf}). */
    readonly key: string,
  ) {
    this.buckets = family.bounds ? new Array<number>(family.bounds.length + 1).fill(0) : undefined;
  }
}

/** One metric of the catalogue: its series and its pre-rendered text. */
export class Family {
  readonly def: MetricDef;
  readonly name: string;
  readonly labelNames: readonly string[];
  /** Key ({@link keyOf}) → series. */
  readonly series = new Map<string, Series>();
  /** One-of gauges: where the exclusive label is among the labels (else -1), and key without it → the series currently set. */
  readonly exclusiveAt: number;
  readonly current = new Map<string, Series>();
  readonly bounds: readonly number[] | undefined;
  /** `name_bucket{le="<bound>"` per bound, then +Inf. */
  readonly bucketHeads: readonly string[] = [];
  readonly header: string;
  readonly omHeader: string;
  /** Per label, in the catalogue's order: `name="` to open a body, `,name="` after another label. */
  readonly #openers: readonly string[];
  readonly #separators: readonly string[];

  constructor(
    readonly key: MetricKey,
    readonly ids: LabelIds = new LabelIds(),
  ) {
    this.def = METRICS[key] as MetricDef;
    this.name = this.def.name;
    this.labelNames = this.def.labels;
    this.exclusiveAt = oneOfAt(key);
    this.#openers = this.labelNames.map((n) => `${n}="`);
    this.#separators = this.labelNames.map((n) => `,${n}="`);
    this.bounds = this.def.type === 'histogram' ? [...(this.def.buckets ?? [])] : undefined;
    if (this.bounds) this.bucketHeads = [...this.bounds.map((b) => `${this.name}_bucket{le="${b}"`), `${this.name}_bucket{le="+Inf"`];
    const help = escapeHelp(this.def.help);
    this.header = `# HELP ${this.name} ${help}\n# TYPE ${this.name} ${this.def.type}\n`;
    const omName = this.def.type === 'counter' ? this.name.replace(/_total$/, '') : this.name;
    this.omHeader = `# HELP ${omName} ${help}\n# TYPE ${omName} ${this.def.type}\n`;
  }

  // Label values are read as SampleOps holds them: `values[at + j]` is the value of the
  // catalogue's j-th label (undefined: absent). `skip` leaves the label at that place out (a
  // one-of gauge's own label, for the key of its group).

  /** The label body of the values at `at` (absent ones left out). */
  body(values: readonly (string | undefined)[], at = 0, skip = -1): string {
    // Built of few pieces (`,name="` is one): Map flattens the string to hash it, once per sample.
    let out = '';
    const n = this.labelNames.length;
    for (let j = 0; j < n; j++) {
      const v = j === skip ? undefined : values[at + j];
      if (v === undefined) continue;
      out += `${out === '' ? this.#openers[j] : this.#separators[j]}${escapeLabel(v)}"`;
    }
    return out;
  }

  /** The key of the values at `at`: their ids in the catalogue's label order; undefined when a value is held by no series (so no series has these labels). */
  keyOf(values: readonly (string | undefined)[], at = 0, skip = -1): string | undefined {
    let out = '';
    const n = this.labelNames.length;
    const ids = this.ids;
    for (let j = 0; j < n; j++) {
      const v = j === skip ? undefined : values[at + j];
      if (v === undefined) {
        out += '\u0000';
        continue;
      }
      const id = ids.get(v);
      if (id === undefined) return undefined;
      out += id < 0x8000 ? String.fromCharCode(id) : idChars(id);
    }
    return out;
  }

  /** The key of the values at `at`, held for one more series (interned when new). */
  holdKey(values: readonly (string | undefined)[], at = 0): string {
    let out = '';
    const n = this.labelNames.length;
    for (let j = 0; j < n; j++) {
      const v = values[at + j];
      out += v === undefined ? '\u0000' : idChars(this.ids.hold(v));
    }
    return out;
  }

  /** Frees the ids a series' key held. */
  releaseKey(key: string): void {
    for (const id of keyIds(key)) this.ids.release(id);
  }

  /** The series of the values at `at`, if the family holds it. */
  find(values: readonly (string | undefined)[], at = 0): Series | undefined {
    const k = this.keyOf(values, at);
    return k === undefined ? undefined : this.series.get(k);
  }

  /** A label set by name as values in the catalogue's order (names it does not have are dropped). */
  valuesOf(labels: Labels): (string | undefined)[] {
    return this.labelNames.map((n) => labels[n]);
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
  /** The label values of all families' series. */
  readonly ids = new LabelIds();
  /**
   * Keys of series dropped during {@link apply}, whose ids are freed when it ends: a key the caller
   * built before (`groups`) must not come to name other labels through an id freed and reused
   * within the same call.
   */
  #releasing: string[] | undefined;
  /** {@link stream}'s copy of a family's series, reused by one scrape at a time. */
  readonly #members: (Series | undefined)[] = [];
  #membersBusy = false;
  #size = 0;

  constructor(metrics: readonly MetricKey[] = RESULT_METRICS) {
    for (const k of metrics) this.#families.set(k, new Family(k, this.ids));
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

  /** The series of the values at `at`, created when absent. */
  #series(f: Family, values: readonly (string | undefined)[], at: number): Series {
    let s = f.find(values, at);
    if (!s) {
      // Built by concatenation, the body is a tree of the request's strings: held flat, it costs
      // its characters only (JSON's round trip keeps every code unit, lone surrogates too).
      const flat = JSON.parse(JSON.stringify(f.body(values, at))) as string;
      const key = f.holdKey(values, at);
      s = new Series(f, flat, key);
      f.series.set(key, s);
      this.#size++;
    }
    return s;
  }

  /** The series the caller looked up already (unless it left the store since), else the one of the values at `at`. */
  #known(f: Family, values: readonly (string | undefined)[], at: number, found: Series | undefined): Series {
    return found !== undefined && !found.removed ? found : this.#series(f, values, at);
  }

  /** The series of `metric` with `labels`, if held. */
  get(metric: MetricKey, labels: Labels): Series | undefined {
    const f = this.#families.get(metric);
    return f?.find(f.valuesOf(labels));
  }

  /**
   * Applies sample operations. Counters add and histograms observe whatever the order; a gauge
   * (and a one-of gauge's choice) keeps the value of the newest check: an operation older (by
   * probe time) than the one the series holds, a spool replayed late, changes nothing.
   * `found[i]`: the series of operation i when the caller looked it up already (not for
   * one-of), so it is not looked up twice; `touched[i]` receives the series operation i is
   * about (the current one of a one-of gauge); `groups[i]`: the key without the one-of label of
   * one-of operation i ({@link Family.keyOf}), when the caller built it already.
   */
  apply(ops: SampleOps, found?: readonly (Series | undefined)[], touched?: (Series | undefined)[], groups?: readonly (string | undefined)[]): void {
    const releasing: string[] = [];
    this.#releasing = releasing;
    try {
      this.#apply(ops, found, touched, groups);
    } finally {
      this.#releasing = undefined;
      for (const key of releasing) for (const id of keyIds(key)) this.ids.release(id);
    }
  }

  #apply(ops: SampleOps, found?: readonly (Series | undefined)[], touched?: (Series | undefined)[], groups?: readonly (string | undefined)[]): void {
    const values = ops.labels;
    for (let i = 0; i < ops.length; i++) {
      const metric = ops.metric[i] as MetricKey;
      const f = this.#families.get(metric);
      if (!f) continue;
      const at = ops.start[i] as number;
      const value = ops.value[i] as number;
      const ts = ops.ts[i] as number;
      let s: Series;
      switch (ops.kind[i]) {
        case 'inc':
          s = this.#known(f, values, at, found?.[i]);
          s.value += value;
          break;
        case 'set':
          s = this.#known(f, values, at, found?.[i]);
          if (touched) touched[i] = s;
          if (ts < s.ts) continue;
          s.value = value;
          break;
        case 'observe': {
          s = this.#known(f, values, at, found?.[i]);
          const bounds = f.bounds ?? [];
          let b = 0;
          while (b < bounds.length && value > (bounds[b] as number)) b++;
          if (s.buckets) s.buckets[b] = (s.buckets[b] ?? 0) + 1;
          s.sum += value;
          s.count += 1;
          break;
        }
        case 'one-of': {
          const group = groups?.[i] ?? f.keyOf(values, at, f.exclusiveAt);
          const cur = group === undefined ? undefined : f.current.get(group);
          if (cur && !cur.removed && ts < cur.ts) {
            if (touched) touched[i] = cur;
            continue;
          }
          const live = cur && !cur.removed ? cur : undefined;
          // The new value's series is made before the old one goes, so the ids they share (the
          // group's) are never freed in between and the group's key stays the same.
          s = live && f.keyOf(values, at) === live.key ? live : this.#series(f, values, at);
          if (live && live !== s) this.#drop(live, ts);
          s.value = 1;
          if (cur !== s) f.current.set(group ?? (f.keyOf(values, at, f.exclusiveAt) as string), s);
          break;
        }
        default:
          continue;
      }
      if (ts > s.ts) s.ts = ts;
      if (touched) touched[i] = s;
      for (const l of this.#listeners) l.changed(s, ts);
    }
    for (const l of this.#listeners) l.applied();
  }

  remove(metric: MetricKey, labels: Labels): void {
    const f = this.#families.get(metric);
    if (!f) return;
    const s = f.find(f.valuesOf(labels));
    if (s) this.drop(s);
  }

  /** Removes a series (and, for a one-of gauge, forgets which value is current). */
  drop(s: Series): void {
    if (s.removed) return;
    const f = s.family;
    if (f.exclusiveAt >= 0) {
      const key = f.keyOf(f.valuesOf(parseBody(s.body)), 0, f.exclusiveAt);
      if (key !== undefined && f.current.get(key) === s) f.current.delete(key);
    }
    this.#drop(s, undefined);
  }

  #drop(s: Series, ts: number | undefined): void {
    if (s.removed) return;
    s.removed = true;
    s.family.series.delete(s.key);
    if (this.#releasing) this.#releasing.push(s.key);
    else s.family.releaseKey(s.key);
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
    // A family's series as they were when its slice run began, in an array this store keeps for
    // the next scrape (a second scrape at the same time takes its own): a fresh copy per family
    // lived through all its slices, so V8 moved it to the old generation, whose growth until the
    // next full collection is RSS (~0.3 MiB per scrape at 100k series).
    const own = !this.#membersBusy;
    const members = own ? this.#members : [];
    this.#membersBusy = true;
    try {
      let out = '';
      let first = true;
      for (const f of this.#families.values()) {
        let n = 0;
        for (const s of f.series.values()) members[n++] = s;
        out += om || first ? (om ? f.omHeader : f.header) : `\n${f.header}`;
        first = false;
        for (let i = 0; i < n; i++) {
          const s = members[i] as Series;
          // Not kept past its line: a series removed meanwhile is garbage once the scrape moves on.
          members[i] = undefined;
          out += f.lines(s);
          if (out.length >= SLICE_CHARS) {
            yield out;
            out = '';
            await nextTurn();
          }
        }
      }
      if (out !== '') yield out;
    } finally {
      if (own) this.#membersBusy = false;
    }
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
