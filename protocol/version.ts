// The package version, read once from package.json: the CLI prints it and the probe reports it
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { readFileSync } = process.getBuiltinModule('node:fs');
// (its self-metrics and the pushes). On the ground floor so every floor may read it.

function find(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // dist/ is one level deeper than the sources
    }
  }
  return '0.0.0';
}

export const VERSION = find();
