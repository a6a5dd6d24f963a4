/**
 * Every docker compose file under deploy/ (found by walking the tree, so new ones are covered) is
 * valid against the Compose specification's JSON schema (vendored in compose-spec/, source and
 * licence noted there) and keeps the house rules: Grafana, Prometheus and Alertmanager published on
 * loopback only, any port published beyond loopback says why in a comment, a health check on every
 * service, Prometheus without its lifecycle API, credentials from git-ignored env files that have a
 * committed example.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { isMap, isScalar, isSeq, type Node, parseDocument } from 'yaml';

const root = resolve(import.meta.dirname, '../..');

function composeFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) composeFiles(p, out);
    else if (/^(docker-)?compose([.-][\w.-]+)?\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

interface Service {
  image?: string;
  command?: string[] | string;
  ports?: (string | number | { published?: string | number; host_ip?: string; target: number })[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  environment?: Record<string, string> | string[];
  env_file?: string | (string | { path: string })[];
}
interface Compose {
  services: Record<string, Service>;
}

const ajv = new Ajv({ allErrors: true, strict: false });
// The schema names its meta-schema by the https URL; Ajv carries draft-07 under the http one.
const draft07 = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('ajv/dist/refs/json-schema-draft-07.json'), 'utf8')) as { $id: string };
ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' });
const validateSpec = ajv.compile(JSON.parse(readFileSync(join(import.meta.dirname, 'compose-spec/compose-spec.json'), 'utf8')) as object);

/** Schema errors, as `path: message`. */
function specErrors(doc: unknown): string[] {
  return validateSpec(doc) ? [] : (validateSpec.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message}`);
}

/** The host address a port entry publishes on ('' for all interfaces), or null when it publishes nothing. */
function hostIp(port: NonNullable<Service['ports']>[number]): string | null {
  if (typeof port === 'object') return port.published === undefined ? null : (port.host_ip ?? '');
  const text = String(port);
  // [HOST_IP:]HOST_PORT:CONTAINER_PORT[/proto], HOST_IP possibly [v6]; a bare CONTAINER_PORT publishes an ephemeral port.
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?([^:]+):([^:]+)$/.exec(text);
  if (!m) return '';
  return (m[1] ?? '').replace(/^\[|\]$/g, '');
}
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** Services that must stay on loopback: no authentication worth the name in front of them. */
const LOOPBACK_ONLY = /^(prom\/prometheus|prom\/alertmanager|grafana\/grafana(-oss|-enterprise)?)(:|$)/;

/** Everything a compose file breaks of the rules above, as `service: rule` lines. */
function ruleErrors(c: Compose, text: string): string[] {
  const out: string[] = [];
  const doc = parseDocument(text, { merge: true });
  for (const [name, s] of Object.entries(c.services)) {
    const hc = s.healthcheck;
    if (!hc || hc.disable === true || !hc.test || (Array.isArray(hc.test) && (hc.test.length < 2 || hc.test[0] === 'NONE')))
      out.push(`${name}: a health check is required`);
    const ports = s.ports ?? [];
    if (s.image && LOOPBACK_ONLY.test(s.image)) {
      for (const p of ports) {
        const ip = hostIp(p);
        if (ip !== null && !LOOPBACK.has(ip)) out.push(`${name}: publish on loopback only (127.0.0.1:…), not ${JSON.stringify(p)}`);
      }
    }
    // Any port published beyond loopback carries a comment saying who must reach it.
    const seq = doc.getIn(['services', name, 'ports'], true) as Node | undefined;
    if (isSeq(seq)) {
      seq.items.forEach((item, i) => {
        if (!isScalar(item)) return;
        const ip = hostIp(item.value as string);
        if (ip === null || LOOPBACK.has(ip)) return;
        const comment = item.commentBefore ?? item.comment ?? (i === 0 ? seq.commentBefore : undefined);
        if (!comment?.trim()) out.push(`${name}: port ${String(item.value)} is published on all interfaces without a comment saying who must reach it`);
      });
    } else if (isMap(seq)) out.push(`${name}: ports must be a list`);
    const command = Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? '');
    if (/--web\.enable-lifecycle/.test(command)) out.push(`${name}: --web.enable-lifecycle lets anyone who reaches Prometheus shut it down`);
    const env = Array.isArray(s.environment) ? s.environment.map((e) => e.split('=')[0] ?? '') : Object.keys(s.environment ?? {});
    for (const k of env)
      if (/PASSWORD|SECRET|TOKEN/.test(k) && !k.endsWith('__FILE')) out.push(`${name}: ${k} belongs in an env file, not in the compose file`);
  }
  return out;
}

function envFiles(s: Service): string[] {
  const e = s.env_file;
  if (e === undefined) return [];
  return (Array.isArray(e) ? e : [e]).map((x) => (typeof x === 'string' ? x : x.path));
}

const files = composeFiles(join(root, 'deploy'));

for (const file of files) {
  const name = relative(root, file);
  test(`${name}: valid against the Compose specification and keeps the rules`, () => {
    const text = readFileSync(file, 'utf8');
    const c = parseDocument(text, { merge: true }).toJS() as Compose;
    assert.deepEqual(specErrors(c), [], `${name}: Compose specification`);
    assert.deepEqual(ruleErrors(c, text), [], name);
    for (const [svc, s] of Object.entries(c.services)) {
      for (const env of envFiles(s)) {
        const path = resolve(dirname(file), env);
        assert.ok(existsSync(`${path}.example`), `${svc}: ${env}.example is committed beside ${name}`);
        const ignored = spawnSync('git', ['check-ignore', '-q', path], { cwd: root });
        assert.equal(ignored.status, 0, `${svc}: ${env} is git-ignored`);
        const example = spawnSync('git', ['check-ignore', '-q', `${path}.example`], { cwd: root });
        assert.equal(example.status, 1, `${svc}: ${env}.example is not ignored`);
      }
    }
  });
}

test('the compose files are found: the single-host and the HA setup, each with the five roles', () => {
  const names = files.map((f) => relative(root, f));
  assert.ok(names.includes('deploy/compose/docker-compose.yml'), names.join(', '));
  assert.ok(names.includes('deploy/compose/docker-compose.ha.yml'), names.join(', '));
  for (const f of ['deploy/compose/docker-compose.yml', 'deploy/compose/docker-compose.ha.yml']) {
    const c = parseDocument(readFileSync(join(root, f), 'utf8'), { merge: true }).toJS() as Compose;
    const grafana = c.services.grafana;
    assert.deepEqual(envFiles(grafana ?? {}), ['grafana.env'], `${f}: Grafana's admin comes from grafana.env`);
    const example = readFileSync(join(root, 'deploy/compose/grafana.env.example'), 'utf8');
    assert.match(example, /^GF_SECURITY_ADMIN_USER=\S+$/m);
    assert.match(example, /^GF_SECURITY_ADMIN_PASSWORD=\S+$/m);
    assert.match(c.services.collector?.healthcheck?.test?.toString() ?? c.services['collector-a']?.healthcheck?.test?.toString() ?? '', /\/readyz/);
    assert.match(c.services.probe?.healthcheck?.test?.toString() ?? '', /:9465\/livez/);
  }
});

test('the rules and the schema catch what they guard', () => {
  const file = join(root, 'deploy/compose/docker-compose.yml');
  const good = readFileSync(file, 'utf8');
  const broken = good
    .replace('"127.0.0.1:3000:3000"', '"3000:3000"')
    .replace('- --storage.tsdb.retention.time=30d', '- --storage.tsdb.retention.time=30d\n      - --web.enable-lifecycle')
    .replace(/( {2}alertmanager:\n(?:.*\n)*?) {4}healthcheck:\n(?: {6}.*\n)+/, '$1')
    .replace(/( {4}ports:\n)(?: {6}#.*\n)+( {6}- "2525:2525")/, '$1$2')
    .replace('MAILPROBE_LOG_LEVEL: info', 'MAILPROBE_LOG_LEVEL: info\n    GF_SECURITY_ADMIN_PASSWORD: admin');
  assert.notEqual(broken, good);
  const c = parseDocument(broken, { merge: true }).toJS() as Compose;
  assert.deepEqual(ruleErrors(c, broken).sort(), [
    'alertmanager: a health check is required',
    'collector: GF_SECURITY_ADMIN_PASSWORD belongs in an env file, not in the compose file',
    'grafana: publish on loopback only (127.0.0.1:…), not "3000:3000"',
    'probe: GF_SECURITY_ADMIN_PASSWORD belongs in an env file, not in the compose file',
    'probe: port 2525:2525 is published on all interfaces without a comment saying who must reach it',
    'prometheus: --web.enable-lifecycle lets anyone who reaches Prometheus shut it down',
  ]);
  // The schema: a misspelt key, a host address of the wrong type, a health check with an unknown field.
  const spec = parseDocument(good, { merge: true }).toJS() as { services: Record<string, Record<string, unknown>> };
  spec.services.grafana!.port = ['127.0.0.1:3000:3000'];
  spec.services.prometheus!.ports = [{ target: 9090, host_ip: 127 }];
  spec.services.alertmanager!.healthcheck = { tset: ['CMD', 'true'] };
  const errors = specErrors(spec);
  assert.ok(errors.includes('/services/alertmanager/healthcheck: must NOT have additional properties'), errors.join('\n'));
  assert.ok(errors.includes('/services/grafana: must NOT have additional properties'), errors.join('\n'));
  assert.ok(errors.includes('/services/prometheus/ports/0/host_ip: must be string'), errors.join('\n'));
});
