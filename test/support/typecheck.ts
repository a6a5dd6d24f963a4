/**
 * Type-check data against a TypeScript type: each value is written as an object literal assigned to
 * the named type in a generated module, and the project's own `tsc` checks them all in one run.
 * Object literals get TypeScript's excess-property check at every depth, so a field the type does
 * not declare (`replica:` for `replicas:`) is an error, as is a wrong type (a string port) or a
 * missing required field. Used for the generated dashboards (`@grafana/schema`) and the built
 * Kubernetes manifests (`kubernetes-models`), whose JSON schemas alone accept unknown fields.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

export interface TypedValue {
  /** Where the value came from, for the error messages: `collector-ha: Deployment/mailprobe-collector`. */
  name: string;
  /** Module the type is exported from: a package (`@grafana/schema`) or an absolute path to a `.js`/`.ts` module. */
  from: string;
  /** The exported type's name. */
  type: string;
  value: unknown;
}

/**
 * Type-checks every value; returns the errors by value name (empty when all hold). The modules are
 * written below `node_modules/.cache` so that they resolve the project's packages, then removed.
 */
export async function typecheck(values: readonly TypedValue[]): Promise<Map<string, string[]>> {
  const cache = join(root, 'node_modules/.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'mailprobe-typecheck-'));
  try {
    const files: string[] = [];
    const owner = new Map<string, { name: string; lines: string[] }>();
    values.forEach((v, i) => {
      const file = `v${i}.ts`;
      const text = `import type { ${v.type} as T } from '${v.from}';\nimport type { AsJson } from '${join(import.meta.dirname, 'as-json.js')}';\nexport const value: AsJson<T> = ${JSON.stringify(v.value, null, 1)};\n`;
      files.push(file);
      owner.set(file, { name: v.name, lines: text.split('\n') });
      writeFileSync(join(dir, file), text);
    });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          skipLibCheck: true,
          noEmit: true,
          types: [],
        },
        files,
      }),
    );
    const out = await new Promise<{ code: number | null; text: string }>((done, fail) => {
      const child = spawn(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], {
        cwd: dir,
      });
      let text = '';
      child.stdout.on('data', (b: Buffer) => (text += b));
      child.stderr.on('data', (b: Buffer) => (text += b));
      child.on('error', fail);
      child.on('close', (code) => done({ code, text }));
    });
    const errors = new Map<string, string[]>();
    let last: string[] | undefined;
    for (const line of out.text.split('\n')) {
      // An error in anything but the generated modules (the types imported, a broken tsconfig) is the harness's own.
      if (/error TS\d+/.test(line) && !/^v\d+\.ts\(/.test(line.trim())) throw new Error(`tsc failed outside the values:\n${out.text}`);
      const m = /^(v\d+\.ts)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line.trim());
      if (!m) {
        // tsc --pretty false indents the elaboration of an error on the lines after it.
        if (last && /^\s+\S/.test(line)) last[last.length - 1] += ` ${line.trim()}`;
        continue;
      }
      const file = owner.get(m[1] ?? '');
      const name = file?.name ?? m[1] ?? '';
      const at = file?.lines[Number(m[2]) - 1]?.trim() ?? '';
      last = errors.get(name) ?? [];
      errors.set(name, last);
      last.push(`${m[3]} (at \`${at}\`)`);
    }
    if (out.code !== 0 && errors.size === 0) throw new Error(`tsc failed without a located error:\n${out.text}`);
    return errors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
