/**
 * Prometheus remote-write 1.0 wire format: a protobuf `prometheus.WriteRequest`, snappy
 * block-compressed (https://prometheus.io/docs/specs/remote_write_spec/).
 *
 *   message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; repeated MetricMetadata metadata = 3; }
 *   message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
 *   message Label        { string name = 1; string value = 2; }
 *   message Sample       { double value = 1; int64 timestamp = 2; }
 *   message MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4; string unit = 5; }
 *
 * Samples are encoded one `timeseries` field at a time straight into the send queue's buffers
 * (encodeTimeSeries); metadata goes through protobufjs' Writer rather than message objects. A stale
 * marker must be the exact NaN bit pattern 0x7ff0000000000002, which a JS number cannot be trusted
 * to carry (engines may canonicalise NaN), so it is written as two raw 32-bit words. The
 * reflection types below describe the same schema and decode requests in tests.
 */
import protobuf from 'protobufjs';
import snappy from 'snappyjs';

/** The headers a remote-write 1.0 request carries. */
export const REMOTE_WRITE_HEADERS = {
  'content-encoding': 'snappy',
  'content-type': 'application/x-protobuf',
  'x-prometheus-remote-write-version': '0.1.0',
} as const;

/** Staleness marker of Prometheus (value/value.go StaleNaN). */
export const STALE_NAN_BITS = { hi: 0x7ff00000, lo: 0x00000002 } as const;

/** One sample of one series; `value` NaN means a stale marker (real values are never NaN). */
export interface WireSample {
  /** Label pairs sorted by name, `__name__` included. */
  labels: readonly (readonly [string, string])[];
  value: number;
  /** Unix ms. */
  ts: number;
}

export type MetadataType = 'counter' | 'gauge' | 'histogram';
export interface WireMetadata {
  type: MetadataType;
  name: string;
  help: string;
}

const METADATA_TYPE: Record<MetadataType, number> = { counter: 1, gauge: 2, histogram: 3 };

// Field tags: (field number << 3) | wire type (0 varint, 1 64-bit, 2 length-delimited).
const TAG_TIMESERIES = (1 << 3) | 2;
const TAG_METADATA = (3 << 3) | 2;
const TAG_LABELS = (1 << 3) | 2;
const TAG_SAMPLES = (2 << 3) | 2;
const TAG_NAME = (1 << 3) | 2;
const TAG_VALUE = (2 << 3) | 2;
const TAG_SAMPLE_VALUE = (1 << 3) | 1;
const TAG_SAMPLE_TS = (2 << 3) | 0;
const TAG_MD_TYPE = (1 << 3) | 0;
const TAG_MD_FAMILY = (2 << 3) | 2;
const TAG_MD_HELP = (4 << 3) | 2;

/** Encodes a WriteRequest (uncompressed protobuf). */
export function encodeWriteRequest(samples: readonly WireSample[], metadata: readonly WireMetadata[] = []): Uint8Array {
  const w = protobuf.Writer.create();
  for (const s of samples) {
    w.uint32(TAG_TIMESERIES).fork();
    for (const [name, value] of s.labels) w.uint32(TAG_LABELS).fork().uint32(TAG_NAME).string(name).uint32(TAG_VALUE).string(value).ldelim();
    w.uint32(TAG_SAMPLES).fork();
    if (Number.isNaN(s.value)) w.uint32(TAG_SAMPLE_VALUE).fixed32(STALE_NAN_BITS.lo).fixed32(STALE_NAN_BITS.hi);
    else w.uint32(TAG_SAMPLE_VALUE).double(s.value);
    w.uint32(TAG_SAMPLE_TS).int64(Math.round(s.ts));
    w.ldelim();
    w.ldelim();
  }
  for (const m of metadata) {
    w.uint32(TAG_METADATA)
      .fork()
      .uint32(TAG_MD_TYPE)
      .int32(METADATA_TYPE[m.type])
      .uint32(TAG_MD_FAMILY)
      .string(m.name)
      .uint32(TAG_MD_HELP)
      .string(m.help)
      .ldelim();
  }
  return w.finish();
}

/** Bytes of a varint (values up to 2^53). */
function varintLen(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, at: number, v: number): number {
  while (v >= 128) {
    buf[at++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

/**
 * At least the bytes encodeTimeSeries writes for `s` (UTF-8 takes at most 3 bytes per UTF-16
 * unit), cheap to compute: the room to make before encoding.
 */
export function maxTimeSeriesLength(s: WireSample): number {
  let n = 32;
  for (const [name, value] of s.labels) n += 3 * (name.length + value.length) + 16;
  return n;
}

/** UTF-8 length of `s`: its length when ASCII (label names and values nearly always are). */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return s.length;
}

function writeString(buf: Buffer, at: number, s: string, bytes: number): number {
  if (bytes !== s.length) return at + buf.write(s, at, 'utf8');
  // ASCII: byte by byte in JS beats a call into the runtime for strings this short.
  for (let i = 0; i < bytes; i++) buf[at + i] = s.charCodeAt(i);
  return at + bytes;
}

/** Label name/value byte lengths of the sample being encoded (reused: no allocation per sample). */
const lengths: number[] = [];

/**
 * Writes one sample as a `timeseries` field of a WriteRequest at `at` (room for
 * maxTimeSeriesLength(s) bytes); returns the offset after it. WriteRequest bodies are these fields
 * one after another (then the metadata), so a queue can hold samples as bytes, not objects: the
 * same bytes encodeWriteRequest writes.
 */
export function encodeTimeSeries(buf: Buffer, at: number, s: WireSample): number {
  const ts = Math.round(s.ts);
  const sample = 9 + 1 + varintLen(ts);
  let body = 1 + varintLen(sample) + sample;
  let k = 0;
  for (const [name, value] of s.labels) {
    const nl = utf8Length(name);
    const vl = utf8Length(value);
    lengths[k++] = nl;
    lengths[k++] = vl;
    const label = 1 + varintLen(nl) + nl + 1 + varintLen(vl) + vl;
    body += 1 + varintLen(label) + label;
  }
  buf[at++] = TAG_TIMESERIES;
  at = writeVarint(buf, at, body);
  k = 0;
  for (const [name, value] of s.labels) {
    const nl = lengths[k++] ?? 0;
    const vl = lengths[k++] ?? 0;
    buf[at++] = TAG_LABELS;
    at = writeVarint(buf, at, 1 + varintLen(nl) + nl + 1 + varintLen(vl) + vl);
    buf[at++] = TAG_NAME;
    at = writeVarint(buf, at, nl);
    at = writeString(buf, at, name, nl);
    buf[at++] = TAG_VALUE;
    at = writeVarint(buf, at, vl);
    at = writeString(buf, at, value, vl);
  }
  buf[at++] = TAG_SAMPLES;
  at = writeVarint(buf, at, sample);
  buf[at++] = TAG_SAMPLE_VALUE;
  if (Number.isNaN(s.value)) {
    buf.writeUInt32LE(STALE_NAN_BITS.lo, at);
    buf.writeUInt32LE(STALE_NAN_BITS.hi, at + 4);
  } else buf.writeDoubleLE(s.value, at);
  at += 8;
  buf[at++] = TAG_SAMPLE_TS;
  return writeVarint(buf, at, ts);
}

/** A WriteRequest from `timeseries` fields already encoded (encodeTimeSeries), plus metadata. */
export function writeRequestOf(timeseries: Buffer, metadata: readonly WireMetadata[]): Buffer {
  return metadata.length === 0 ? timeseries : Buffer.concat([timeseries, encodeWriteRequest([], metadata)]);
}

/** The request body: snappy block format (not the framed stream format). */
export function compress(raw: Uint8Array): Buffer {
  return snappy.compress(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
}

export function uncompress(body: Uint8Array): Buffer {
  return snappy.uncompress(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** The same schema as protobufjs reflection types (for decoding in tests and tools). */
export const WriteRequestType: protobuf.Type = (() => {
  const ns = new protobuf.Root().define('prometheus');
  ns.add(new protobuf.Type('Label').add(new protobuf.Field('name', 1, 'string')).add(new protobuf.Field('value', 2, 'string')));
  ns.add(new protobuf.Type('Sample').add(new protobuf.Field('value', 1, 'double')).add(new protobuf.Field('timestamp', 2, 'int64')));
  ns.add(new protobuf.Type('TimeSeries').add(new protobuf.Field('labels', 1, 'Label', 'repeated')).add(new protobuf.Field('samples', 2, 'Sample', 'repeated')));
  ns.add(
    new protobuf.Type('MetricMetadata')
      .add(new protobuf.Field('type', 1, 'int32'))
      .add(new protobuf.Field('metricFamilyName', 2, 'string'))
      .add(new protobuf.Field('help', 4, 'string'))
      .add(new protobuf.Field('unit', 5, 'string')),
  );
  const wr = new protobuf.Type('WriteRequest')
    .add(new protobuf.Field('timeseries', 1, 'TimeSeries', 'repeated'))
    .add(new protobuf.Field('metadata', 3, 'MetricMetadata', 'repeated'));
  ns.add(wr);
  return wr;
})();

export interface DecodedSeries {
  labels: Record<string, string>;
  samples: { value: number; timestamp: number; stale: boolean }[];
}

/** Decodes a snappy-compressed WriteRequest body; stale markers are recognised by their bits. */
export function decodeWriteRequest(body: Uint8Array): { timeseries: DecodedSeries[]; metadata: { type: number; metricFamilyName: string; help: string }[] } {
  const raw = uncompress(body);
  const msg = WriteRequestType.decode(raw);
  const obj = WriteRequestType.toObject(msg, { longs: Number, defaults: true, arrays: true }) as {
    timeseries: { labels: { name: string; value: string }[]; samples: { value: number; timestamp: number }[] }[];
    metadata: { type: number; metricFamilyName: string; help: string }[];
  };
  // The double fields lost their NaN payload in decoding: read the raw bits again.
  const staleFlags = staleBits(raw);
  let i = 0;
  const timeseries = obj.timeseries.map((ts) => ({
    labels: Object.fromEntries(ts.labels.map((l) => [l.name, l.value])),
    samples: ts.samples.map((s) => ({ value: s.value, timestamp: s.timestamp, stale: staleFlags[i++] ?? false })),
  }));
  return { timeseries, metadata: obj.metadata };
}

/** For each sample in order: whether its value is exactly the stale NaN. */
function staleBits(raw: Uint8Array): boolean[] {
  const out: boolean[] = [];
  const r = protobuf.Reader.create(raw);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1) {
      r.skipType(tag & 7);
      continue;
    }
    const end = r.uint32() + r.pos;
    while (r.pos < end) {
      const t = r.uint32();
      if (t >>> 3 !== 2) {
        r.skipType(t & 7);
        continue;
      }
      const sEnd = r.uint32() + r.pos;
      let stale = false;
      while (r.pos < sEnd) {
        const st = r.uint32();
        if (st === TAG_SAMPLE_VALUE) {
          const lo = r.fixed32();
          const hi = r.fixed32();
          stale = lo === STALE_NAN_BITS.lo && hi === STALE_NAN_BITS.hi;
        } else r.skipType(st & 7);
      }
      out.push(stale);
    }
  }
  return out;
}
