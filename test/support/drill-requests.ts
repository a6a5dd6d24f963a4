/**
 * Malformed pushes for the collector drills, as fast-check arbitraries. Every request one of
 * these produces must be refused with a 4xx: each kind breaks the wire contract in a way the
 * schema, the JSON parser or the authentication must catch (no mutation can yield a valid batch).
 */
import fc from 'fast-check';
import type { Batch } from '../../protocol/wire.js';
import { batchOf, mixedResults } from './results.js';
import { tokenFor } from '../../bench/lib/plan.js';

export interface DrillRequest {
  kind: string;
  method: 'POST' | 'PUT' | 'GET' | 'DELETE';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const auth = (id = 'p-eu') => ({ authorization: `Bearer ${tokenFor(id)}`, 'content-type': 'application/json' });

/** A valid batch of probe p-eu with a few results of every type (the base the mutations break). */
export function validBatch(): Batch {
  return batchOf(mixedResults());
}

/** Paths to every node of a JSON tree. */
function nodes(v: Json, at: (string | number)[] = [], out: { path: (string | number)[]; value: Json }[] = []): typeof out {
  out.push({ path: at, value: v });
  if (Array.isArray(v)) for (const [i, x] of v.entries()) nodes(x, [...at, i], out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) nodes(x, [...at, k], out);
  return out;
}

function setAt(root: Json, path: readonly (string | number)[], value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  const copy = structuredClone(root) as Record<string | number, Json>;
  let cur = copy;
  for (const key of path.slice(0, -1)) cur = cur[key] as Record<string | number, Json>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return copy as Json;
}

/** A JSON value of a different JSON type than `v` (never null: `ttl` may be null). */
function otherType(v: Json): fc.Arbitrary<Json> {
  const str = fc.string({ maxLength: 20 });
  const num = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
  const arr = fc.array(fc.integer(), { maxLength: 3 });
  const obj = fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 });
  if (typeof v === 'string') return fc.oneof(num, fc.boolean(), arr, obj);
  if (typeof v === 'number') return fc.oneof(str, fc.boolean(), arr, obj);
  if (typeof v === 'boolean') return fc.oneof(str, num, arr, obj);
  if (v === null) return fc.oneof(str, fc.boolean(), obj);
  if (Array.isArray(v)) return fc.oneof(str, num, fc.boolean(), obj);
  return fc.oneof(str, num, fc.boolean(), arr);
}

/** Keys every batch, probe, batch info and result must have. */
const REQUIRED = [
  ['probe'],
  ['batch'],
  ['results'],
  ['probe', 'id'],
  ['probe', 'region'],
  ['probe', 'version'],
  ['batch', 'id'],
  ['batch', 'seq'],
  ['batch', 'createdAt'],
];
const REQUIRED_IN_RESULT = ['type', 'startedAt', 'durationSeconds', 'ok'];

const mutated: fc.Arbitrary<DrillRequest> = fc
  .tuple(fc.constantFrom('unknown-field', 'wrong-type', 'missing-field', 'out-of-range'), fc.nat(), fc.nat(), fc.string({ minLength: 1, maxLength: 12 }))
  .chain(([how, pick, pick2, name]): fc.Arbitrary<DrillRequest> => {
    const base = validBatch() as unknown as Json;
    const all = nodes(base);
    if (how === 'unknown-field') {
      const objects = all.filter((n) => n.value !== null && typeof n.value === 'object' && !Array.isArray(n.value));
      const target = objects[pick % objects.length] ?? { path: [], value: base };
      const key = `x-unknown-${name}`;
      return fc.jsonValue().map((v) => ({
        kind: how,
        method: 'POST' as const,
        path: '/v1/results',
        headers: auth(),
        body: JSON.stringify(setAt(base, [...target.path, key], v as Json)),
      }));
    }
    if (how === 'wrong-type') {
      const leaves = all.filter((n) => n.path.length > 0);
      const target = leaves[pick % leaves.length] ?? { path: ['probe'], value: {} };
      return otherType(target.value).map((v) => ({
        kind: how,
        method: 'POST' as const,
        path: '/v1/results',
        headers: auth(),
        body: JSON.stringify(setAt(base, target.path, v)),
      }));
    }
    if (how === 'missing-field') {
      const results = (base as { results: Json[] }).results;
      const paths = [...REQUIRED, ...results.flatMap((_, i) => REQUIRED_IN_RESULT.map((k) => ['results', i, k]))];
      const path = paths[pick % paths.length] ?? ['probe'];
      return fc.constant({ kind: how, method: 'POST' as const, path: '/v1/results', headers: auth(), body: JSON.stringify(setAt(base, path, undefined)) });
    }
    // Numbers the schema bounds: below a minimum, or a time of day past 30 days.
    const results = (base as { results: Json[] }).results;
    const i = pick2 % results.length;
    const bad: [(string | number)[], Json][] = [
      [['batch', 'seq'], -1 - (pick % 1000)],
      [['batch', 'createdAt'], -1],
      [['results', i, 'startedAt'], -1 - pick],
      [['results', i, 'durationSeconds'], 86_400 * 31 + pick],
      [['results', i, 'durationSeconds'], -0.5],
      [['batch', 'id'], 'short'],
      [['probe', 'id'], ' spaces not allowed'],
      [['results', i, 'type'], `no-such-check-${name}`],
    ];
    const [path, v] = bad[pick % bad.length] ?? [['batch', 'seq'], -1];
    return fc.constant({ kind: how, method: 'POST' as const, path: '/v1/results', headers: auth(), body: JSON.stringify(setAt(base, path, v)) });
  });

/** Text that is not JSON: random strings that do not parse, and valid batches cut short. */
const notJson: fc.Arbitrary<DrillRequest> = fc
  .oneof(
    fc.string({ maxLength: 200 }).filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true;
      }
    }),
    fc.nat().map((n) => {
      const text = JSON.stringify(validBatch());
      return text.slice(0, 1 + (n % (text.length - 1)));
    }),
  )
  .map((body) => ({ kind: 'not-json', method: 'POST' as const, path: '/v1/results', headers: auth(), body }));

/** Valid JSON that is no batch (objects with `results` are left out: they could be one). */
const notABatch: fc.Arbitrary<DrillRequest> = fc
  .jsonValue({ maxDepth: 4 })
  .filter((v) => !(v !== null && typeof v === 'object' && !Array.isArray(v) && 'results' in v))
  .map((v) => ({ kind: 'not-a-batch', method: 'POST' as const, path: '/v1/results', headers: auth(), body: JSON.stringify(v) }));

/** A valid batch with a broken envelope: token, content type, probe id, route. */
const badEnvelope: fc.Arbitrary<DrillRequest> = fc
  .tuple(
    fc.constantFrom('no-token', 'unknown-token', 'malformed-auth', 'other-probe', 'content-type', 'route', 'method'),
    fc.string({ minLength: 1, maxLength: 40 }),
  )
  .map(([kind, s]) => {
    const body = JSON.stringify(validBatch());
    const req: DrillRequest = { kind, method: 'POST', path: '/v1/results', headers: auth(), body };
    switch (kind) {
      case 'no-token':
        req.headers = { 'content-type': 'application/json' };
        break;
      case 'unknown-token':
        req.headers = { ...auth(), authorization: `Bearer not-a-token-${encodeURIComponent(s)}` };
        break;
      case 'malformed-auth':
        req.headers = { ...auth(), authorization: `Basic ${encodeURIComponent(s)}` };
        break;
      case 'other-probe':
        // p-us's token with p-eu's batch.
        req.headers = auth('p-us');
        break;
      case 'content-type':
        req.headers = { ...auth(), 'content-type': s.includes('json') ? 'text/plain' : `text/${encodeURIComponent(s)}` };
        break;
      case 'route':
        req.path = `/v1/${encodeURIComponent(s)}`;
        if (req.path === '/v1/results') req.path = '/v1/resultz';
        break;
      case 'method':
        req.method = s.length % 2 === 0 ? 'PUT' : 'DELETE';
        break;
    }
    return req;
  });

/** Every kind of malformed push, weighted towards the body-level ones. */
export const malformedPush: fc.Arbitrary<DrillRequest> = fc.oneof(
  { arbitrary: mutated, weight: 5 },
  { arbitrary: notJson, weight: 2 },
  { arbitrary: notABatch, weight: 1 },
  { arbitrary: badEnvelope, weight: 2 },
);
