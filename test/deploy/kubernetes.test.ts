/**
 * Every kustomization under deploy/ (found by walking the tree, so new ones are covered) builds with
 * plain `kubectl kustomize`, and every object it emits is valid Kubernetes: checked against the
 * API's OpenAPI schemas as the `kubernetes-models` package compiles them (types, required fields,
 * formats), and type-checked against the same package's types, which also refuses fields the API
 * does not have (the OpenAPI schemas allow them; the API server drops them silently, kubectl's
 * strict validation refuses them).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { peer } from '../../scripts/peers.mjs';
import { typecheck } from '../support/typecheck.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

/** Directories holding a kustomization file, below `dir`. */
function kustomizations(dir: string, out: string[] = []): string[] {
  const entries = readdirSync(dir);
  if (entries.some((e) => e === 'kustomization.yaml' || e === 'kustomization.yml' || e === 'Kustomization')) out.push(dir);
  for (const e of entries) if (statSync(join(dir, e)).isDirectory()) kustomizations(join(dir, e), out);
  return out;
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
}

/** `kubectl kustomize DIR` as plain objects. */
async function build(dir: string): Promise<K8sObject[]> {
  const { stdout } = await run(peer('kubectl'), ['kustomize', dir], { maxBuffer: 64 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((d) => {
    assert.deepEqual(
      d.errors.map((e) => e.message),
      [],
      `${dir}: kubectl kustomize printed YAML that does not parse`,
    );
    return d.toJS() as K8sObject;
  });
}

/** Validation errors of one object against its API schema (kubernetes-models), as `path: message`. */
async function schemaErrors(o: K8sObject): Promise<string[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<string, unknown>;
  } catch {
    return [`no schema for apiVersion ${o.apiVersion}`];
  }
  const Model = mod[o.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) return [`no schema for ${o.apiVersion} ${o.kind}`];
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

const label = (dir: string, o: K8sObject): string => `${relative(root, dir)}: ${o.kind}/${o.metadata?.name ?? '?'}`;

/** Every problem of the named objects (schema, then type check), by name. Empty when all are valid. */
async function validateObjects(objects: readonly { name: string; object: K8sObject }[]): Promise<Map<string, string[]>> {
  const problems = new Map<string, string[]>();
  for (const { name, object } of objects) {
    const errors = await schemaErrors(object);
    if (errors.length > 0) problems.set(name, errors);
  }
  const typed = objects.map(({ name, object }) => ({ name, from: `kubernetes-models/${object.apiVersion}`, type: `I${object.kind}`, value: object }));
  for (const [name, errors] of await typecheck(typed)) problems.set(name, [...(problems.get(name) ?? []), ...errors]);
  return problems;
}

const dirs = kustomizations(join(root, 'deploy'));

test('every kustomization under deploy/ builds with plain kubectl kustomize into valid Kubernetes objects', async () => {
  // The ones this repository ships today; the walk finds any added later.
  for (const d of ['kubernetes/base', 'kubernetes/collector', 'kubernetes/collector-ha', 'kubernetes/grafana', 'kubernetes/overlays/eu', 'kubernetes/plan']) {
    assert.ok(dirs.includes(join(root, 'deploy', d)), `found deploy/${d}`);
  }
  const built = await Promise.all(dirs.map(async (dir) => (await build(dir)).map((object) => ({ name: label(dir, object), object }))));
  assert.ok(built.every((objects) => objects.length > 0));
  const problems = await validateObjects(built.flat());
  assert.deepEqual(Object.fromEntries(problems), {});
});

test('the validation refuses a misspelt field, a string port, a missing required field and an unknown kind', async () => {
  const objects = await build(join(root, 'deploy/kubernetes/collector-ha'));
  const deployment = objects.find((o) => o.kind === 'Deployment') as K8sObject & {
    spec: Record<string, unknown> & { template: { spec: { containers: { name?: string; ports: { containerPort: unknown }[] }[] } } };
  };
  const { replicas, ...spec } = deployment.spec;
  const container = spec.template.spec.containers[0]!;
  const misspelt = { ...deployment, spec: { ...spec, replica: replicas } };
  const stringPort = structuredClone(deployment);
  stringPort.spec.template.spec.containers[0]!.ports[0]!.containerPort = '9464';
  const nameless = structuredClone(deployment);
  delete nameless.spec.template.spec.containers[0]!.name;
  const problems = await validateObjects([
    { name: 'misspelt', object: misspelt },
    { name: 'string port', object: stringPort },
    { name: 'nameless', object: nameless },
    { name: 'unknown kind', object: { apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } } },
  ]);
  assert.equal(container.name, 'collector');
  assert.deepEqual([...problems.keys()].sort(), ['misspelt', 'nameless', 'string port', 'unknown kind']);
  assert.match(problems.get('misspelt')?.join('\n') ?? '', /'"replica"' does not exist in type .*\(at `"replica": 2,?`\)/);
  assert.match(problems.get('string port')?.join('\n') ?? '', /containerPort must be integer/);
  assert.match(problems.get('string port')?.join('\n') ?? '', /Type 'string' is not assignable to type 'number'.*"containerPort": "9464"/);
  assert.match(problems.get('nameless')?.join('\n') ?? '', /containers\/0 must have required property name/);
  assert.equal(problems.get('unknown kind')?.[0], 'no schema for apps/v1 Deploymnet');
});

test('the collector-ha kustomization builds the namespace, the scale-out Deployment, its Service, HPA, PDB and plan', async () => {
  const objects = await build(join(root, 'deploy/kubernetes/collector-ha'));
  const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name?.replace(/^(mailprobe-plan-rw)-\w+$/, '$1-<hash>')}`).sort();
  assert.deepEqual(kinds, [
    'ConfigMap/mailprobe-plan-rw-<hash>',
    'Deployment/mailprobe-collector-rw',
    'HorizontalPodAutoscaler/mailprobe-collector-rw',
    'Namespace/mailprobe',
    'PodDisruptionBudget/mailprobe-collector-rw',
    'Service/mailprobe-collector-rw',
  ]);
});
