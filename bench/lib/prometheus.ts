/** Tests use the lab's Prometheus and Alertmanager runners (lab/prometheus.ts) under these names. */
export {
  DEPLOY_RULE_FILES,
  PrometheusQueryError,
  compressRules,
  durationSeconds,
  overrideFor,
  startAlertmanager as startTestAlertmanager,
  startPrometheus as startTestPrometheus,
  type ActiveAlert,
  type PrometheusOptions as TestPrometheusOptions,
  type QueryData,
  type RunningAlertmanager as TestAlertmanager,
  type RunningPrometheus as TestPrometheus,
  type VectorSample,
} from '../../lab/prometheus.js';

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { DEPLOY_RULE_FILES } from '../../lab/prometheus.js';

/** One rule of the deploy rule files: an alert or a recording rule. */
export interface DeployRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The rules of one rule file. */
export function deployRulesOf(file: string): DeployRule[] {
  return (parse(readFileSync(file, 'utf8')) as { groups: { rules: DeployRule[] }[] }).groups.flatMap((g) => g.rules);
}

/** Every rule of deploy/prometheus/rules, read from the files, so tests follow what ships. */
export function deployRules(): DeployRule[] {
  return DEPLOY_RULE_FILES.flatMap(deployRulesOf);
}

/** The names of every alert in the deploy rule files. */
export function deployAlertNames(): string[] {
  return deployRules().flatMap((r) => (r.alert === undefined ? [] : [r.alert]));
}

/** The alert names the promtool unit tests (deploy/prometheus/tests/*.yml) have cases for. */
export function promtoolTestedAlerts(): Set<string> {
  const dir = join(dirname(DEPLOY_RULE_FILES[0] ?? ''), '../tests');
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .flatMap((f) => (parse(readFileSync(join(dir, f), 'utf8')) as { tests?: { alert_rule_test?: { alertname: string }[] }[] }).tests ?? [])
    .flatMap((t) => (t.alert_rule_test ?? []).map((c) => c.alertname));
  return new Set(names);
}
