/**
 * Results → sample operations. This is the one place that knows which result field feeds which
 * metric of the catalogue; outputs (the /metrics registry, remote write) only apply operations.
 */
import { METRICS, type MetricKey } from '../protocol/metrics.js';
import type { CheckResult } from '../protocol/results.js';

export type Labels = Record<string, string>;

interface OpBase {
  metric: MetricKey;
  labels: Labels;
  /** The time the check started, Unix ms (remote write sends it as the sample time). */
  ts: number;
}

export type SampleOp =
  | (OpBase & { op: 'observe' | 'inc' | 'set'; value: number })
  /** Sets `labels + {[label]: value}` to 1 and removes the series of the label's other values. */
  | (OpBase & { op: 'one-of'; label: string; value: string });

export interface ProbeRef {
  id: string;
  region: string;
}

function outcome(r: CheckResult): string {
  return r.ok ? 'success' : (r.errorClass ?? 'internal');
}

const b = (v: boolean): number => (v ? 1 : 0);

/** The operations one result produces. */
export function resultOps(probe: ProbeRef, r: CheckResult): SampleOp[] {
  const rp = { region: probe.region, probe: probe.id };
  const ts = r.startedAt;
  const ops: SampleOp[] = [{ op: 'inc', metric: 'checks', labels: { ...rp, type: r.type, result: outcome(r) }, value: 1, ts }];
  const push = (op: SampleOp['op'], metric: MetricKey, labels: Labels, value: number) => ops.push({ op, metric, labels, value, ts } as SampleOp);

  switch (r.type) {
    case 'dns': {
      // resolver_name is 1:1 with resolver in a plan: it adds no series, only the name to show.
      const l = { ...rp, resolver: r.resolver, resolver_name: r.resolverName ?? r.resolver };
      push('observe', 'dnsLookupDuration', l, r.durationSeconds);
      push('inc', 'dnsLookups', { ...l, result: outcome(r) }, 1);
      const named = { ...l, name: r.name, type: r.qtype };
      ops.push({ op: 'one-of', metric: 'dnsAnswerSide', labels: named, label: 'side', value: r.ok ? r.side : 'error', ts });
      if (r.ok && r.ttl !== null) push('set', 'dnsTtl', named, r.ttl);
      break;
    }
    case 'ttl': {
      const l = { ...rp, resolver: r.resolver, resolver_name: r.resolverName ?? r.resolver, name: r.name };
      push('set', 'dnsResolverStale', l, r.staleSeconds);
      push('set', 'dnsTtlViolation', l, b(r.violation));
      if (r.tested !== undefined) push('set', 'dnsTtlTested', l, b(r.tested));
      push('set', 'dnsTtlExtension', l, r.extensionSeconds);
      if (r.safeToSwitchAt !== undefined && r.safeToSwitchAt !== null) push('set', 'safeToSwitch', { ...rp, name: r.name }, r.safeToSwitchAt / 1000);
      if (r.safeToDecommission !== undefined) push('set', 'safeToDecommission', { ...rp, name: r.name }, b(r.safeToDecommission));
      break;
    }
    case 'rdns': {
      const l = { ip: r.ip, side: r.side };
      push('set', 'fcrdnsOk', l, b(r.ok && r.fcrdns));
      push('set', 'ptrMatchesMailHost', l, b(r.ok && r.matchesMailHost));
      // Once the mail host points at the IP: a PTR name is the mail host, or one of its own confirms now.
      push('set', 'fcrdnsOkWhenServed', l, b(r.ok && (r.fcrdns || r.matchesMailHost)));
      // A failed lookup says nothing about the names: keep the last known.
      if (r.ok) ops.push({ op: 'one-of', metric: 'ptrInfo', labels: l, label: 'ptr', value: r.ptrNames.length > 0 ? r.ptrNames.join(',') : '(none)', ts });
      break;
    }
    case 'auth': {
      const v = b(r.ok && r.pass);
      if (r.method === 'spf') push('set', 'spfPass', { ip: r.subject, side: r.side ?? 'old' }, v);
      else if (r.method === 'dkim') push('set', 'dkimKeyPresent', { selector: r.subject }, v);
      else if (r.method === 'dmarc') push('set', 'dmarcPresent', { domain: r.subject }, v);
      else if (r.method === 'mta-sts') push('set', 'mtaStsOk', { domain: r.subject }, v);
      else push('set', 'tlsaPresent', { name: r.subject }, v);
      break;
    }
    case 'dnsbl': {
      const l = { ip: r.ip, side: r.side, list: r.list };
      // A refused or failed query says nothing about listing: keep the last known value.
      if (r.ok) push('set', 'dnsblListed', l, b(r.listed));
      else push('inc', 'dnsblErrors', l, 1);
      break;
    }
    case 'smtp': {
      const l = { ...rp, ip: r.ip, side: r.side };
      for (const [phase, seconds] of Object.entries(r.phases)) {
        if (typeof seconds === 'number') push('observe', 'smtpDuration', { ...l, phase }, seconds);
      }
      // A session is timed from its connect phase on (as the mean session of the recording rules).
      if (r.phases.connect !== undefined) push('observe', 'smtpSessionDuration', l, Object.values(r.phases).reduce((a, v) => a + (v ?? 0), 0));
      push('inc', 'smtpChecks', { ...l, result: outcome(r) }, 1);
      push('set', 'smtpUp', l, b(r.ok));
      if (r.tls) {
        push('set', 'tlsCertExpiry', { ip: r.ip, side: r.side }, r.tls.certExpiry);
        push('set', 'tlsCertValid', { ip: r.ip, side: r.side }, b(r.tls.verified));
      } else if (r.errorClass === 'cert_invalid') {
        push('set', 'tlsCertValid', { ip: r.ip, side: r.side }, 0);
      }
      break;
    }
    case 'roundtrip': {
      const l = { ...rp, via_ip: r.viaIp, side: r.side };
      if (r.delivered && r.latencySeconds !== undefined) push('observe', 'roundtripDuration', l, r.latencySeconds);
      // lost: sent but not arrived by the deadline; failed: the server did not take it.
      push('inc', 'roundtrips', { ...l, result: r.delivered ? 'delivered' : r.errorClass === 'lost' ? 'lost' : 'failed' }, 1);
      if (r.verdicts) {
        for (const [method, verdict] of Object.entries(r.verdicts)) {
          ops.push({ op: 'one-of', metric: 'roundtripAuth', labels: { via_ip: r.viaIp, method }, label: 'result', value: verdict, ts });
        }
      }
      break;
    }
  }
  return ops;
}

/** Label names each op must carry, checked against the catalogue in tests. */
export function opLabelNames(op: SampleOp): string[] {
  return op.op === 'one-of' ? [...Object.keys(op.labels), op.label] : Object.keys(op.labels);
}

/** A stable key of one series. */
export function seriesKey(metric: MetricKey, labels: Labels, extra?: [string, string]): string {
  const names = METRICS[metric].labels;
  let key = metric;
  for (const n of names) key += `\u0000${n === extra?.[0] ? extra[1] : (labels[n] ?? '')}`;
  return key;
}
