/**
 * The VictoriaMetrics flags that test/e2e/victoria-metrics.test.ts runs with are the ones a user
 * deploys: the single node's query flags and vmalert's query step, in the compose file, the
 * Kubernetes manifests and docs/scaling-out.md. A manifest that drifts from the tested setup
 * (a shorter query step restarts the alerts' `for:` timers after a store outage) fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { VM_SEARCH_FLAGS, VMALERT_QUERY_STEP } from '../../bench/lib/victoria-metrics.js';

const VMALERT_FLAGS = [`-datasource.queryStep=${VMALERT_QUERY_STEP}`];

interface Container {
  image?: string;
  args?: string[];
}

/** The args of every container of the manifests in `file`, by image name (without tag). */
function kubernetesArgs(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const o = doc.toJS() as { spec?: { template?: { spec?: { containers?: Container[] } } } } | null;
    for (const c of o?.spec?.template?.spec?.containers ?? []) out.set(c.image?.split(':')[0] ?? '', c.args ?? []);
  }
  return out;
}

const missing = (args: readonly string[] | undefined, flags: readonly string[]) => flags.filter((f) => !(args ?? []).includes(f));

test('the compose file runs VictoriaMetrics and vmalert with the tested query flags', () => {
  const compose = parse(readFileSync('deploy/compose/docker-compose.vm.yml', 'utf8')) as { services: Record<string, { command?: string[] }> };
  assert.deepEqual(missing(compose.services.victoriametrics?.command, VM_SEARCH_FLAGS), [], 'victoriametrics');
  assert.deepEqual(missing(compose.services.vmalert?.command, VMALERT_FLAGS), [], 'vmalert');
});

test('the Kubernetes manifests run VictoriaMetrics and vmalert with the tested query flags', () => {
  const vm = kubernetesArgs('deploy/kubernetes/victoria-metrics/victoria-metrics.yaml').get('victoriametrics/victoria-metrics');
  const vmalert = kubernetesArgs('deploy/kubernetes/victoria-metrics/vmalert.yaml').get('victoriametrics/vmalert');
  assert.ok(vm && vmalert, 'both containers found');
  assert.deepEqual(missing(vm, VM_SEARCH_FLAGS), [], 'victoria-metrics');
  assert.deepEqual(missing(vmalert, VMALERT_FLAGS), [], 'vmalert');
});

test('docs/scaling-out.md gives the tested query flags', () => {
  const doc = readFileSync('docs/scaling-out.md', 'utf8');
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const vm = blocks.find((b) => b.startsWith('victoria-metrics '))?.split(/\s+/);
  const vmalert = blocks.find((b) => b.startsWith('vmalert '))?.split(/\s+/);
  assert.deepEqual(missing(vm, VM_SEARCH_FLAGS), [], 'the single node');
  assert.deepEqual(missing(vmalert, VMALERT_FLAGS), [], 'vmalert');
});
