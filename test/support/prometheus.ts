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
