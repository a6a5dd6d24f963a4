/**
 * A query answer as rows for comparing two sources (two Prometheus servers, Prometheus and
 * VictoriaMetrics): `[labels without instance and job, value]`, sorted by labels.
 */
import type { QueryData } from '../../bench/lib/prometheus.js';

export type Row = [string, number];

export function rows(d: QueryData): Row[] {
  const key = (m: Record<string, string>) =>
    Object.entries(m)
      .filter(([k]) => k !== 'instance' && k !== 'job')
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  if (d.resultType === 'vector') return d.result.map((s): Row => [key(s.metric), Number(s.value[1])]).sort((a, b) => a[0].localeCompare(b[0]));
  if (d.resultType === 'scalar') return [['', Number(d.result[1])]];
  throw new Error(`unexpected ${d.resultType}`);
}
