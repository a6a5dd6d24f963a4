/**
 * The Prometheus text format's spelling of values and escapes, shared by the two writers of it:
 * the collector's series store (collector/store/series-store.ts) and the probe's own /metrics
 * (probe/self-metrics.ts). Both write what prom-client wrote, `Nan` included.
 */

/** A sample value as the text formats write it. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return `${v}`;
}

const NEEDS_ESCAPE = /[\\\n"]/;

/** A label value between its quotes: backslash, newline and double quote escaped. */
export const escapeLabel = (v: string): string => (NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v);

/** `# HELP` text: backslash and newline escaped. */
export const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
