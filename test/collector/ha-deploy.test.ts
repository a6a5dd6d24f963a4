/**
 * The HA and scale-out deployment files: the compose HA pair (two collectors, a probe pushing to
 * both, Prometheus scraping both; promtool accepts its config with the rules) and the Kubernetes
 * scale-out collectors (Deployment, Service, HPA and PDB agree on names and labels; the plan with
 * remote write validates).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { loadPlan } from '../../config/load.js';

const root = resolve(import.meta.dirname, '../..');
const compose = join(root, 'deploy/compose');
const k8s = join(root, 'deploy/kubernetes/collector-ha');

type Doc = Record<string, unknown>;
const yamlOf = (file: string): Doc => parse(readFileSync(file, 'utf8'), { merge: true }) as Doc;

test('compose HA: two collectors with their own replica ids, a probe pushing to both, files that exist', async () => {
  const file = join(compose, 'docker-compose.ha.yml');
  const doc = yamlOf(file) as { services: Record<string, { environment?: Record<string, string>; volumes?: string[]; command?: string[] }> };
  const s = doc.services;
  assert.ok(s['collector-a'] && s['collector-b'] && s.probe && s.prometheus);
  assert.equal(s['collector-a']?.environment?.MAILPROBE_REPLICA, 'collector-a');
  assert.equal(s['collector-b']?.environment?.MAILPROBE_REPLICA, 'collector-b');
  assert.deepEqual(s['collector-a']?.command, ['collector', '--listen', '0.0.0.0:9464']);
  for (const [name, svc] of Object.entries(s)) {
    for (const v of svc.volumes ?? []) {
      const host = v.split(':')[0] ?? '';
      if (host.startsWith('.')) assert.ok(existsSync(resolve(dirname(file), host)), `${name}: ${host} exists`);
    }
  }
  const plan = await loadPlan(join(compose, 'plan.ha.yaml'));
  assert.deepEqual(plan.probes.push.collectors, ['http://collector-a:9464', 'http://collector-b:9464']);
  assert.ok('compose-eu' in plan.collector.tokens);
  const prom = yamlOf(join(compose, 'prometheus.ha.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
  const job = prom.scrape_configs.find((j) => j.job_name === 'mailprobe-collector');
  assert.deepEqual(
    job?.static_configs.flatMap((c) => c.targets),
    ['collector-a:9464', 'collector-b:9464'],
  );
});

test('compose HA: promtool accepts the Prometheus config with the rules mounted beside it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-compose-ha-'));
  try {
    cpSync(join(compose, 'prometheus.ha.yml'), join(dir, 'prometheus.yml'));
    cpSync(join(root, 'deploy/prometheus/rules'), join(dir, 'rules'), { recursive: true });
    const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Kubernetes scale-out: Deployment, Service, HPA and PDB agree; the plan writes remotely; files exist', async () => {
  const kust = yamlOf(join(k8s, 'kustomization.yaml')) as { resources: string[]; configMapGenerator: { name: string; files: string[] }[] };
  for (const r of kust.resources) assert.ok(existsSync(join(k8s, r)), `${r} exists`);
  for (const f of kust.configMapGenerator.flatMap((g) => g.files)) assert.ok(existsSync(join(k8s, f)), `${f} exists`);
  const docs = new Map<string, Doc>();
  for (const f of readdirSync(k8s).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'plan.yaml')) {
    for (const d of parseAllDocuments(readFileSync(join(k8s, f), 'utf8'))) {
      const doc = d.toJS() as Doc & { kind: string };
      docs.set(doc.kind, doc);
    }
  }
  type Dep = {
    metadata: { name: string };
    spec: {
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string> };
        spec: {
          containers: {
            env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
            readinessProbe: { httpGet: { path: string } };
            volumeMounts: { name: string }[];
          }[];
          volumes: { name: string; configMap: { name: string } }[];
        };
      };
    };
  };
  const dep = docs.get('Deployment') as Dep;
  const svc = docs.get('Service') as { spec: { selector: Record<string, string>; sessionAffinity: string } };
  const hpa = docs.get('HorizontalPodAutoscaler') as { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number } };
  const pdb = docs.get('PodDisruptionBudget') as { spec: { selector: { matchLabels: Record<string, string> } } };
  const podLabels = dep.spec.template.metadata.labels;
  const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
  assert.ok(matches(dep.spec.selector.matchLabels) && matches(svc.spec.selector) && matches(pdb.spec.selector.matchLabels), 'selectors match the pods');
  assert.equal(svc.spec.sessionAffinity, 'ClientIP', 'a probe sticks to one replica');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name });
  assert.ok(hpa.spec.minReplicas >= 2);
  const c = dep.spec.template.spec.containers[0];
  assert.equal(c?.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c?.env.find((e) => e.name === 'MAILPROBE_REPLICA')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'instance = pod name');
  assert.equal(dep.spec.template.spec.volumes[0]?.configMap.name, kust.configMapGenerator[0]?.name);

  const plan = await loadPlan(join(k8s, 'plan.yaml'));
  assert.equal(plan.collector.remote_write?.enabled, true);
  assert.match(plan.collector.remote_write?.url ?? '', /\/api\/v1\/write$/);
  assert.ok((plan.collector.remote_write?.resend_interval ?? 0) < 300_000);
  assert.deepEqual(plan.probes.push.collectors, ['http://mailprobe-collector-rw.mailprobe.svc:9464']);
});
