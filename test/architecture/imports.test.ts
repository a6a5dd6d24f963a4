// The house has floors and the stairs only go down: this test reads every .ts file of the source
// floors (and test/), parses its imports and fails on an upward import, on any import cycle
// between files, and on an import of test/ from outside test/. The floors, top to bottom:
//   cli → lab, bench, report → probe, collector → config, grafana → protocol
// protocol/ imports nothing but protocol/, node built-ins and TypeBox (its schema language); bench/
// may use scripts/ (the peer installer). See docs/architecture.md.
// TypeScript 7 has no compiler API, so the imports are read with a small exact scanner below.
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '..', '..');

/** Floor of each top-level source folder; a file may import only its own floor or lower ones. */
export const FLOORS: Readonly<Record<string, number>> = {
  cli: 4,
  lab: 3,
  bench: 3,
  report: 3,
  probe: 2,
  collector: 2,
  config: 1,
  grafana: 1,
  protocol: 0,
};
const HOUSE = [...Object.keys(FLOORS), 'test'];
/** Tooling beside the house, and the floors that may use it: the benchmarks install their peers. */
const SIDE: Readonly<Record<string, readonly string[]>> = { scripts: ['bench'] };
/** protocol/'s contracts are TypeBox schemas; besides that package it reads only node built-ins,
 * and its one file that registers catalogue metrics (protocol/prom.ts) reads prom-client. */
const PROTOCOL_PACKAGES = ['@sinclair/typebox'];
const PROTOCOL_FILE_PACKAGES: Readonly<Record<string, readonly string[]>> = { 'protocol/prom.ts': ['prom-client'] };

function walk(dir: string, out: string[]): string[] {
  for (const e of readdirSync(dir).sort()) {
    if (e === 'node_modules') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Strip comments and regex literals and blank every string literal that does not follow
 * `from`/`import`, so neither a commented-out import nor one quoted in a string counts (and a `//`
 * or a quote inside a string or regex is neither comment nor string). */
function stripComments(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && n === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
      out += ' ';
    } else if (c === '/' && /(?:[(,=:[!&|?{};+\-*%<>~^]|\breturn|^)\s*$/.test(out)) {
      // A regex literal (where an operand may start): skip it, quotes inside are no strings.
      let inClass = false;
      i++;
      while (i < src.length && src[i] !== '\n' && (inClass || src[i] !== '/')) {
        if (src[i] === '\\') i++;
        else if (src[i] === '[') inClass = true;
        else if (src[i] === ']') inClass = false;
        i++;
      }
      i++;
      out += '/r/';
    } else if (c === "'" || c === '"' || c === '`') {
      const start = i++;
      while (i < src.length && src[i] !== c) i += src[i] === '\\' ? 2 : 1;
      i++;
      // Keep a literal only where it names a module; any other string may not look like an import.
      out += /(?:\bfrom|\bimport|\bimport\s*\()\s*$/.test(out) ? src.slice(start, i) : `${c}${c}`;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The module specifiers one file imports: static imports (type-only too), re-exports, `import('…')`. */
export function specifiers(src: string): string[] {
  const code = stripComments(src);
  const found: string[] = [];
  const patterns = [
    /(?:^|[;\n}])\s*import\s+(?:type\s+)?[\w*{},\s$]*?\s*from\s*([\x22\x27])([^\x22\x27\n]+)\1/g,
    /(?:^|[;\n}])\s*import\s*([\x22\x27])([^\x22\x27\n]+)\1/g,
    /(?:^|[;\n}])\s*export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*([\x22\x27])([^\x22\x27\n]+)\1/g,
    /\bimport\s*\(\s*([\x22\x27])([^\x22\x27\n]+)\1\s*[,)]/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[2]!);
  return found;
}

interface Edge {
  from: string;
  to: string;
}

/** Resolve a relative specifier to a repository path (`.js` in sources names the `.ts` file). */
function target(fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const abs = resolve(dirname(join(root, fromFile)), spec);
  return relative(root, abs).replace(/\.js$/, '.ts');
}

function graph(): { files: string[]; edges: Edge[]; external: Edge[] } {
  const files = HOUSE.flatMap((d) => walk(join(root, d), [])).map((p) => relative(root, p));
  const edges: Edge[] = [];
  const external: Edge[] = [];
  for (const from of files) {
    for (const spec of specifiers(readFileSync(join(root, from), 'utf8'))) {
      const to = target(from, spec);
      if (to === undefined) external.push({ from, to: spec });
      else edges.push({ from, to });
    }
  }
  return { files, edges, external };
}

const top = (path: string) => path.split('/')[0]!;
const show = (es: Edge[]) => es.map((e) => `  ${e.from} → ${e.to}`).join('\n');

/** Edges that climb a floor or leave the house for a folder without a floor (scripts/, …). */
export function upward(edges: Edge[]): Edge[] {
  return edges.filter((e) => {
    const from = top(e.from);
    const to = top(e.to);
    if (from === 'test' || to === 'test') return false;
    const f = FLOORS[from];
    const t = FLOORS[to];
    if (f === undefined) return false;
    if (t === undefined) return !(SIDE[to] ?? []).includes(from);
    return t > f;
  });
}

/** Every cycle between files, each printed once as a closed path (Tarjan's strongly connected components). */
export function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || next.get(v)?.has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

const { files, edges, external } = graph();

test('the scanner reads every import form, type-only and dynamic ones included', () => {
  const src = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    'import * as c from "./c.js";',
    "import d, { type E } from './d.js';",
    "import './side.js';",
    "export { f } from './f.js';",
    "export type { G } from './g.js';",
    "export * from './h.js';",
    'export * as i from "./i.js";',
    'import {',
    '  j,',
    '  type K,',
    "} from './jk.js';",
    "const l = await import('./l.js');",
    "// import { nope } from './comment.js';",
    "/* import { nope } from './block.js'; */",
    'const s = "import { x } from \'./string.js\'";',
    "const r = /it's/; const t = \"import('./after-regex.js')\"; import('./m.js');",
  ].join('\n');
  assert.deepEqual(specifiers(src).sort(), [
    '../b.js',
    './a.js',
    './c.js',
    './d.js',
    './f.js',
    './g.js',
    './h.js',
    './i.js',
    './jk.js',
    './l.js',
    './m.js',
    './side.js',
  ]);
});

test('the graph covers the house', () => {
  for (const floor of HOUSE)
    assert.ok(
      files.some((f) => top(f) === floor),
      `no .ts file under ${floor}/`,
    );
  assert.ok(edges.length > 200, `only ${edges.length} edges read: the scanner misses imports`);
  const missing = edges.filter((e) => !files.includes(e.to) && HOUSE.includes(top(e.to)));
  assert.deepEqual(missing, [], `imports of files that do not exist:\n${show(missing)}`);
});

test('every import points down: cli → lab/bench/report → probe/collector → config/grafana → protocol', () => {
  const bad = upward(edges);
  assert.equal(bad.length, 0, `upward imports:\n${show(bad)}`);
});

test('protocol/ imports nothing but protocol/, node built-ins and TypeBox (protocol/prom.ts: prom-client)', () => {
  const allowed = (e: Edge) => PROTOCOL_PACKAGES.includes(e.to) || (PROTOCOL_FILE_PACKAGES[e.from] ?? []).includes(e.to);
  const bad = [
    ...edges.filter((e) => top(e.from) === 'protocol' && top(e.to) !== 'protocol'),
    ...external.filter((e) => top(e.from) === 'protocol' && !e.to.startsWith('node:') && !allowed(e)),
  ];
  assert.equal(bad.length, 0, `protocol/ imports from outside:\n${show(bad)}`);
});

test('nothing outside test/ imports test/', () => {
  const bad = edges.filter((e) => top(e.to) === 'test' && top(e.from) !== 'test');
  assert.equal(bad.length, 0, `imports of test/ from outside test/:\n${show(bad)}`);
});

test('no import cycle between files', () => {
  const found = cycles(edges);
  assert.equal(found.length, 0, `import cycles:\n${found.map((c) => `  ${c.join(' ↔ ')}`).join('\n')}`);
});

test('the checks themselves catch what they guard', () => {
  const e = (from: string, to: string): Edge => ({ from, to });
  assert.deepEqual(upward([e('probe/runtime.ts', 'cli/version.ts'), e('cli/main.ts', 'probe/runtime.ts')]), [e('probe/runtime.ts', 'cli/version.ts')]);
  assert.deepEqual(upward([e('lab/a.ts', 'scripts/x.ts'), e('bench/a.ts', 'scripts/x.ts')]), [e('lab/a.ts', 'scripts/x.ts')]);
  assert.deepEqual(cycles([e('a.ts', 'b.ts'), e('b.ts', 'c.ts'), e('c.ts', 'a.ts'), e('c.ts', 'd.ts')]), [['a.ts', 'b.ts', 'c.ts']]);
  assert.deepEqual(cycles([e('a.ts', 'b.ts'), e('b.ts', 'c.ts')]), []);
});
