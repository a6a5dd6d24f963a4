/**
 * The deployment files: every YAML parses, the plans in them validate, compose and kustomize refer
 * to files that exist, the compose Prometheus config passes promtool with the rules, the Dockerfile
 * builds every source folder and runs `mailprobe`, and the systemd units take the probe id and
 * token the way the README says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { loadPlan } from '../../config/load.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const yamlFiles = [...walk(join(root, 'deploy')), ...walk(join(root, 'grafana/provisioning'))].filter((f) => /\.ya?ml$/.test(f));

test('every YAML file under deploy/ and grafana/provisioning parses', () => {
  assert.ok(yamlFiles.length >= 20, `${yamlFiles.length} files`);
  for (const f of yamlFiles) {
    const docs = parseAllDocuments(readFileSync(f, 'utf8'));
    for (const d of docs)
      assert.deepEqual(
        d.errors.map((e) => e.message),
        [],
        relative(root, f),
      );
    assert.ok(docs.length > 0 && docs.every((d) => d.contents !== null), `${relative(root, f)} is empty`);
  }
});

test('the plans of compose and Kubernetes validate, with a token hash per probe they run', async () => {
  const compose = await loadPlan(join(root, 'deploy/compose/plan.yaml'));
  assert.ok('compose-eu' in compose.collector.tokens);
  assert.deepEqual(compose.probes.push.collectors, ['http://collector:9464']);
  assert.notEqual(compose.probes.smtp.port, 25, 'compose probes the submission port (port 25 is often blocked)');
  const k8s = await loadPlan(join(root, 'deploy/kubernetes/plan/plan.yaml'));
  for (const region of ['eu', 'us', 'ap']) assert.ok(region in k8s.collector.tokens, `token for ${region}`);
  assert.equal(k8s.probes.push.collectors.length, 2, 'probes push to both collectors of the pair');
});

test('docker-compose runs collector, probe, Prometheus, Alertmanager and Grafana from files that exist', () => {
  const file = join(root, 'deploy/compose/docker-compose.yml');
  const c = parse(readFileSync(file, 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; build?: { context: string; dockerfile: string }; command?: string[]; volumes?: string[]; env_file?: string }>;
  };
  assert.deepEqual(Object.keys(c.services).sort(), ['alertmanager', 'collector', 'grafana', 'probe', 'prometheus']);
  for (const [name, s] of Object.entries(c.services)) {
    for (const v of s.volumes ?? []) {
      const src = v.split(':')[0] ?? '';
      if (src.startsWith('.')) assert.ok(existsSync(resolve(dirname(file), src)), `${name}: ${src} does not exist`);
    }
  }
  const build = c.services.collector?.build;
  assert.ok(build && existsSync(join(resolve(dirname(file), build.context), build.dockerfile)), 'collector build');
  assert.equal(c.services.collector?.command?.[0], 'collector');
  assert.equal(c.services.probe?.command?.[0], 'probe');
  assert.equal(c.services.probe?.env_file, 'probe.env');
  assert.ok(existsSync(join(root, 'deploy/compose/probe.env.example')));
});

test('promtool accepts the compose Prometheus config with the rules mounted beside it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-compose-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Lay the files out as the compose file mounts them in the container.
  cpSync(join(root, 'deploy/compose/prometheus.yml'), join(dir, 'prometheus.yml'));
  cpSync(join(root, 'deploy/prometheus/rules'), join(dir, 'rules'), { recursive: true });
  const r = await run('promtool', ['check', 'config', join(dir, 'prometheus.yml')]);
  assert.match(r.stdout + r.stderr, /SUCCESS: 2 rule files found/);
  const cfg = parse(readFileSync(join(dir, 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] };
  assert.ok(cfg.scrape_configs.some((s) => s.job_name === 'mailprobe-collector'));
});

test('the deploy Prometheus config scrapes an HA pair of collectors', () => {
  const cfg = parse(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    rule_files: string[];
  };
  const job = cfg.scrape_configs.find((s) => s.job_name === 'mailprobe-collector');
  assert.equal(job?.static_configs.flatMap((s) => s.targets).length, 2);
  assert.deepEqual(cfg.rule_files.sort(), ['rules/mailprobe-alerts.yml', 'rules/mailprobe-recording.yml']);
});

interface Kustomization {
  resources?: string[];
  nameSuffix?: string;
  patches?: { target: { kind: string; name: string }; patch: string }[];
  configMapGenerator?: { name: string; files: string[] }[];
}

test('kustomize: every resource exists, an overlay per region patches the probe env by the right index', () => {
  const kdir = join(root, 'deploy/kubernetes');
  const kfiles = walk(kdir).filter((f) => f.endsWith('kustomization.yaml'));
  for (const f of kfiles) {
    const k = parse(readFileSync(f, 'utf8')) as Kustomization;
    for (const r of k.resources ?? []) assert.ok(existsSync(resolve(dirname(f), r)), `${relative(root, f)}: ${r}`);
    for (const g of k.configMapGenerator ?? []) for (const file of g.files) assert.ok(existsSync(resolve(dirname(f), file)), `${relative(root, f)}: ${file}`);
  }
  const probe = parseAllDocuments(readFileSync(join(kdir, 'base/probe.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind: string; spec: { template?: { spec: { containers: { env: { name: string }[] }[] } } } },
  );
  const env = probe.find((d) => d.kind === 'Deployment')?.spec.template?.spec.containers[0]?.env.map((e) => e.name) ?? [];
  for (const region of ['eu', 'us', 'ap']) {
    const k = parse(readFileSync(join(kdir, 'overlays', region, 'kustomization.yaml'), 'utf8')) as Kustomization;
    assert.equal(k.nameSuffix, `-${region}`);
    const ops = parse(k.patches?.[0]?.patch ?? '[]') as { path: string; value: string }[];
    const byName = new Map(ops.map((o) => [env[Number(/env\/(\d+)/.exec(o.path)?.[1])], o.value]));
    assert.equal(byName.get('MAILPROBE_PROBE_ID'), region);
    assert.equal(byName.get('MAILPROBE_REGION'), region);
    assert.equal(byName.get('MAILPROBE_TOKEN'), `mailprobe-probe-token-${region}`);
  }
  const pair = parse(readFileSync(join(kdir, 'collector/kustomization.yaml'), 'utf8')) as Kustomization;
  assert.deepEqual(
    pair.resources?.filter((r) => r === 'a' || r === 'b'),
    ['a', 'b'],
  );
});

test('the Dockerfile builds every source folder of the build on the Node line npm start runs and runs mailprobe', () => {
  const text = readFileSync(join(root, 'deploy/Dockerfile'), 'utf8');
  // The image runs the same Node major as the runtime package.json pins (devDependencies.node).
  const pinned = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.node;
  const major = /^\^?(\d+)\./.exec(pinned ?? '')?.[1];
  assert.ok(major, `package.json pins the node package: ${pinned}`);
  assert.match(text, new RegExp(`^ARG NODE_VERSION=${major}$`, 'm'));
  assert.equal(text.match(/^FROM node:\$\{NODE_VERSION\}-slim/gm)?.length, 2, `two stages on node:${major}-slim`);
  assert.match(text, /npm ci --omit=dev --ignore-scripts/);
  assert.match(text, /^RUN npm run build$/m);
  assert.match(text, /^ENTRYPOINT \["mailprobe"\]$/m);
  assert.match(text, /^USER node$/m);
  const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  for (const dir of build.include) assert.match(text, new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'), `Dockerfile does not copy ${dir}/`);
  for (const m of text.matchAll(/^COPY (?!--from)(\S+)/gm)) assert.ok(existsSync(join(root, m[1] ?? '')), `COPY ${m[1]}: missing`);
  // The ignore file lets exactly those folders into the context.
  const ignore = readFileSync(join(root, 'deploy/Dockerfile.dockerignore'), 'utf8');
  for (const dir of build.include) assert.match(ignore, new RegExp(`^!${dir}/\\*\\*$`, 'm'));
});

function unit(file: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(join(root, 'deploy/systemd', file), 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `${file}: bad line ${line}`);
    const k = `${section}.${line.slice(0, eq)}`;
    keys.set(k, [...(keys.get(k) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

test('systemd: the probe template takes its id from the instance and its token from an EnvironmentFile', () => {
  const p = unit('mailprobe-probe@.service');
  assert.deepEqual(p.get('Service.EnvironmentFile'), ['/etc/mailprobe/probe-%i.env']);
  assert.match(p.get('Service.ExecStart')?.[0] ?? '', /dist\/cli\/main\.js probe --id %i --spool-dir \/var\/lib\/mailprobe\/%i$/);
  assert.deepEqual(p.get('Service.StateDirectory'), ['mailprobe/%i']);
  assert.deepEqual(p.get('Install.WantedBy'), ['multi-user.target']);
  assert.ok(!(p.get('Service.Environment') ?? []).some((e) => e.includes('MAILPROBE_TOKEN')), 'no token in the unit');
  const env = readFileSync(join(root, 'deploy/systemd/probe.env.example'), 'utf8');
  assert.match(env, /^MAILPROBE_TOKEN=/m);
  assert.match(env, /^MAILPROBE_REGION=/m);
  const c = unit('mailprobe-collector.service');
  assert.match(c.get('Service.ExecStart')?.[0] ?? '', /main\.js collector$/);
});

test('the README covers each deployment, blocked port 25 and giving each probe its token', () => {
  const text = readFileSync(join(root, 'deploy/README.md'), 'utf8');
  for (const h of ['## Container image', '## docker compose', '## Kubernetes', '## systemd', '## Prometheus', '## Grafana']) assert.ok(text.includes(h), h);
  assert.match(text, /block outbound port 25/);
  assert.match(text, /587/);
  assert.match(text, /465/);
  assert.match(text, /relay host/);
  assert.match(text, /mailprobe token/);
  assert.match(text, /MAILPROBE_TOKEN/);
});

/** `KEY=value` lines of an env file. */
function envFile(path: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

test('every deploy of a probe supplies the round-trip secret its plan names and has its /metrics scraped, /livez for liveness', () => {
  // The plans configure a round trip, so the probe needs the variable probes.roundtrip.secret_env names.
  for (const plan of ['deploy/compose/plan.yaml', 'deploy/compose/plan.ha.yaml', 'deploy/kubernetes/plan/plan.yaml']) {
    const p = parse(readFileSync(join(root, plan), 'utf8')) as { probes: { roundtrip?: { to?: string; secret_env?: string } } };
    assert.ok(p.probes.roundtrip?.to, `${plan}: a round trip`);
    assert.equal(p.probes.roundtrip?.secret_env ?? 'MAILPROBE_RT_SECRET', 'MAILPROBE_RT_SECRET', plan);
  }
  // compose: probe.env (from the example) carries it; both compose files read probe.env.
  assert.ok((envFile(join(root, 'deploy/compose/probe.env.example')).get('MAILPROBE_RT_SECRET') ?? '').length >= 16);
  for (const f of ['deploy/compose/docker-compose.yml', 'deploy/compose/docker-compose.ha.yml']) {
    const c = parse(readFileSync(join(root, f), 'utf8')) as {
      services: Record<string, { env_file?: string; command?: string[]; healthcheck?: { test: string[] }; ports?: string[] }>;
    };
    const probe = c.services.probe!;
    assert.equal(probe.env_file, 'probe.env', f);
    assert.deepEqual(probe.command?.slice(-2), ['--health-listen', '0.0.0.0:9465'], f);
    assert.match(probe.healthcheck?.test.join(' ') ?? '', /127\.0\.0\.1:9465\/livez/, f);
    assert.ok(probe.ports?.includes('2525:2525'), `${f}: the sink is published`);
  }
  for (const f of ['deploy/compose/prometheus.yml', 'deploy/compose/prometheus.ha.yml', 'deploy/prometheus/prometheus.yml']) {
    const cfg = parse(readFileSync(join(root, f), 'utf8')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const job = cfg.scrape_configs.find((s) => s.job_name === 'mailprobe-probe');
    assert.ok(
      job?.static_configs.flatMap((s) => s.targets).every((t) => t.endsWith(':9465')),
      `${f}: job mailprobe-probe scrapes the probes on 9465`,
    );
  }
  // Kubernetes: the env var from a Secret, /metrics annotated for scraping, /livez for the kubelet.
  interface Manifest {
    kind: string;
    spec: {
      template: {
        metadata: { annotations: Record<string, string> };
        spec: {
          containers: {
            env: { name: string; valueFrom?: { secretKeyRef?: unknown } }[];
            args: string[];
            livenessProbe: { httpGet: { path: string } };
            readinessProbe: { httpGet: { path: string } };
          }[];
        };
      };
    };
  }
  const docs = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes/base/probe.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);
  const dep = docs.find((d) => d.kind === 'Deployment');
  const pod = dep?.spec.template;
  const container = pod?.spec.containers[0];
  assert.ok(pod && container, 'deploy/kubernetes/base/probe.yaml has a Deployment with a container');
  const rt = container.env.find((e) => e.name === 'MAILPROBE_RT_SECRET');
  assert.deepEqual(rt?.valueFrom?.secretKeyRef, { name: 'mailprobe-roundtrip', key: 'MAILPROBE_RT_SECRET' });
  assert.deepEqual(
    [pod.metadata.annotations['prometheus.io/scrape'], pod.metadata.annotations['prometheus.io/port'], pod.metadata.annotations['prometheus.io/path']],
    ['true', '9465', '/metrics'],
  );
  assert.ok(container.args.join(' ').includes('--health-listen 0.0.0.0:9465'));
  assert.equal(container.livenessProbe.httpGet.path, '/livez');
  assert.equal(container.readinessProbe.httpGet.path, '/livez');
  // systemd: the env file example carries the secret and the health listen address.
  const env = envFile(join(root, 'deploy/systemd/probe.env.example'));
  assert.ok((env.get('MAILPROBE_RT_SECRET') ?? '').length >= 16);
  assert.equal(env.get('MAILPROBE_HEALTH_LISTEN'), '0.0.0.0:9465');
  assert.match(readFileSync(join(root, 'deploy/systemd/mailprobe-probe@.service'), 'utf8'), /^EnvironmentFile=\/etc\/mailprobe\/probe-%i\.env$/m);
});
