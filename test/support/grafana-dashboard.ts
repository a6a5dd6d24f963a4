/**
 * The dashboard JSON Grafana reads and writes: `@grafana/schema`'s `Dashboard` plus the few fields
 * Grafana writes itself that the type leaves out, each allowed here by name. The type-check test of
 * the generated dashboards (test/grafana/schema.test.ts) checks them against this.
 */
import type { AnnotationQuery, Dashboard, VariableModel } from '@grafana/schema';

/**
 * A Prometheus annotation as Grafana stores it: the query's fields beside the annotation instead
 * of in `target` (the Prometheus data source's own annotation format, which Grafana keeps on save).
 */
type PrometheusAnnotation = AnnotationQuery & {
  expr?: string;
  step?: string;
  titleFormat?: string;
  tagKeys?: string;
  textFormat?: string;
  useValueForTime?: boolean;
};

/**
 * A variable as Grafana stores it: `auto`, `auto_min` and `auto_count` of interval variables, and
 * `definition`, the text of a query variable's query that Grafana shows in the variables list.
 */
type StoredVariable = VariableModel & { auto?: boolean; auto_min?: string; auto_count?: number; definition?: string };

export type SavedDashboard = Omit<Dashboard, 'annotations' | 'templating'> & {
  annotations?: Omit<NonNullable<Dashboard['annotations']>, 'list'> & { list?: PrometheusAnnotation[] };
  templating?: { list?: StoredVariable[] };
};
