/**
 * The editor schema (`mailprobe config schema`, committed as examples/plan.schema.json): it is
 * current, every plan we ship or test with passes it under ajv (defaults are not required), a
 * broken plan does not, and the `$schema` line of the example names it.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { planJsonSchema, validatePlan } from '../../config/load.js';
import { testPlanInput } from '../../bench/lib/plan.js';

const root = new URL('../../', import.meta.url).pathname;
const committedFile = join(root, 'examples/plan.schema.json');
const committed = JSON.parse(readFileSync(committedFile, 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: true }).compile(committed);
const errorsOf = (plan: unknown): string[] => (validate(plan) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`));

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

/** Plans written as files or embedded in deploy files (a YAML document, or a string value that holds one). */
function deployPlans(): { where: string; plan: unknown }[] {
  const out: { where: string; plan: unknown }[] = [];
  const isPlan = (v: unknown): boolean => !!v && typeof v === 'object' && !Array.isArray(v) && 'cutover' in v;
  const walk = (v: unknown, where: string): void => {
    if (isPlan(v)) out.push({ where, plan: v });
    else if (typeof v === 'string' && /^cutover:/m.test(v)) {
      try {
        const inner = parseYaml(v) as unknown;
        if (isPlan(inner)) out.push({ where, plan: inner });
      } catch {
        // Not YAML: no plan in it.
      }
    } else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${where}/${k}`);
  };
  for (const f of files(join(root, 'deploy')).filter((p) => /\.(ya?ml|service|env|example)$/.test(p) || /plan/.test(p))) {
    const text = readFileSync(f, 'utf8');
    if (!/cutover:/.test(text)) continue;
    if (/\.ya?ml$/.test(f)) for (const [i, d] of parseAllDocuments(text).entries()) walk('toJS' in d ? d.toJS() : undefined, `${relative(root, f)}#${i}`);
    else assert.fail(`${relative(root, f)} holds a plan in a form this test does not read`);
  }
  return out;
}

test('the committed schema is what `mailprobe config schema` prints', () => {
  assert.deepEqual(
    committed,
    planJsonSchema(),
    'examples/plan.schema.json is stale: regenerate it with `node --import tsx cli/main.ts config schema > examples/plan.schema.json`',
  );
});

test('the $schema line of the example plan names the committed schema', () => {
  const line = /\$schema=(\S+)/.exec(readFileSync(join(root, 'examples/plan.yaml'), 'utf8'))?.[1];
  assert.ok(line, 'examples/plan.yaml has a $schema line');
  assert.equal(resolve(join(root, 'examples'), line), committedFile);
  assert.ok(existsSync(resolve(dirname(join(root, 'examples/plan.yaml')), line)));
});

test('every example, deploy and test plan passes the schema under ajv, and is valid', () => {
  const plans: { where: string; plan: unknown }[] = [
    { where: 'examples/plan.yaml', plan: parseYaml(readFileSync(join(root, 'examples/plan.yaml'), 'utf8')) },
    ...deployPlans(),
    { where: 'testPlanInput()', plan: JSON.parse(JSON.stringify(testPlanInput())) },
    {
      where: 'a plan with only the required fields',
      plan: {
        cutover: {
          domain: 'company.com',
          mail_host: 'mail.company.com',
          servers: [
            { ip: '192.0.2.1', side: 'old' },
            { ip: '192.0.2.2', side: 'new' },
          ],
          window: { start: '2026-12-04T20:00:00Z', end: '2026-12-05T02:00:00Z' },
        },
      },
    },
  ];
  const where = plans.map((p) => p.where);
  assert.ok(
    where.some((w) => w.startsWith('deploy/compose/plan.yaml')) && where.some((w) => w.startsWith('deploy/kubernetes/plan/plan.yaml')),
    where.join(', '),
  );
  for (const { where, plan } of plans) {
    assert.deepEqual(errorsOf(plan), [], where);
    validatePlan(plan, where, { files: false });
  }
});

test('the schema is no blank cheque: broken plans fail it', () => {
  const good = JSON.parse(JSON.stringify(testPlanInput())) as { cutover: Record<string, unknown>; probes: Record<string, unknown> };
  assert.deepEqual(errorsOf({ ...good, cutover: { ...good.cutover, mailhost: 'x' } }), ['/cutover must NOT have additional properties']);
  assert.deepEqual(errorsOf({ ...good, probes: { ...good.probes, interval: 'soon' } }), [
    '/probes/interval must match pattern "^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$"',
  ]);
  const { window: _, ...noWindow } = good.cutover;
  assert.deepEqual(errorsOf({ ...good, cutover: noWindow }), ["/cutover must have required property 'window'"]);
});
