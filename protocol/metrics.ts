/**
 * The metric catalogue (docs/architecture.md, the contracts): every metric mailprobe exports, in one place.
 * The collector registers from it, dashboards and alert rules take their names from it,
 * and tests check the exposition against it.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * Who writes a metric: `result`, the collector from the probes' check results (the outputs
 * register these); `collector`, the collector about itself and the pushes it takes; `plan`, the
 * collector from the plan (servers, cutover window); `probe`, the probe on its own /metrics.
 */
export type MetricOrigin = 'result' | 'collector' | 'plan' | 'probe';

export interface MetricDef {
  /** Full name including the `mailprobe_` prefix (counters end in `_total`). */
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly origin: MetricOrigin;
  readonly labels: readonly string[];
  /**
   * A gauge kept as one of this label's values: 1 on the current value, the series of the
   * label's other values removed (written with `Ops.oneOf`).
   */
  readonly oneOf?: string;
  /** Histogram buckets in seconds. */
  readonly buckets?: readonly number[];
  /** Gauges that a silent probe's series are removed from (they carry `probe`). */
  readonly perProbe?: boolean;
}

export const PREFIX = 'mailprobe_';

/**
 * The `job` label of the collectors' series: the job Prometheus scrapes them under
 * (deploy/prometheus/prometheus.yml), remote write's default `job`, and what the collector alerts,
 * rules and panels select.
 */
export const COLLECTOR_JOB = 'mailprobe-collector';
/** The job name of the probes' own /metrics where Prometheus scrapes them (deploy/compose). */
export const PROBE_JOB = 'mailprobe-probe';

/** SMTP phases and round trips: 10 ms up to 10 minutes (greylisting and queue retries are slow). */
export const SMTP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const;
/** DNS lookups: 1 ms up to 10 s (a resolver timing out). */
export const DNS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Round trips through a real mail server: 1 s to 1 h. */
export const ROUNDTRIP_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600] as const;
/** Collector request handling. */
export const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

const RP = ['region', 'probe'] as const;

function def<const D extends MetricDef>(d: D): D {
  return d;
}

export const METRICS = {
  smtpDuration: def({
    name: 'mailprobe_smtp_duration_seconds',
    help: 'Duration of each SMTP phase (connect, banner, ehlo, starttls, auth, mail, rcpt, data, quit) per destination IP.',
    type: 'histogram',
    origin: 'result',
    labels: [...RP, 'ip', 'side', 'phase'],
    buckets: SMTP_BUCKETS,
  }),
  smtpSessionDuration: def({
    name: 'mailprobe_smtp_session_duration_seconds',
    help: 'Duration of a whole SMTP session (the sum of its phases) per destination IP, for session quantiles.',
    type: 'histogram',
    origin: 'result',
    labels: [...RP, 'ip', 'side'],
    buckets: SMTP_BUCKETS,
  }),
  smtpChecks: def({
    name: 'mailprobe_smtp_checks_total',
    help: 'SMTP checks per destination IP by result (success or the error class).',
    type: 'counter',
    origin: 'result',
    labels: [...RP, 'ip', 'side', 'result'],
  }),
  smtpUp: def({
    name: 'mailprobe_smtp_up',
    help: '1 if the last SMTP check to this destination IP succeeded.',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'ip', 'side'],
    perProbe: true,
  }),
  tlsCertExpiry: def({
    name: 'mailprobe_tls_cert_expiry_timestamp_seconds',
    help: 'Expiry (Unix time) of the certificate the destination IP presented.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  tlsCertValid: def({
    name: 'mailprobe_tls_cert_valid',
    help: '1 if the certificate the destination IP presented verifies for the mail host.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  dnsLookupDuration: def({
    name: 'mailprobe_dns_lookup_duration_seconds',
    help: 'Duration of DNS lookups per resolver.',
    type: 'histogram',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name'],
    buckets: DNS_BUCKETS,
  }),
  dnsLookups: def({
    name: 'mailprobe_dns_lookups_total',
    help: 'DNS lookups per resolver by result (success or the error class).',
    type: 'counter',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name', 'result'],
  }),
  dnsAnswerSide: def({
    name: 'mailprobe_dns_answer_side',
    help: 'Which side (old/new/both/other/none/error) the resolver answered last; 1 on the current side, series of other sides removed.',
    type: 'gauge',
    origin: 'result',
    oneOf: 'side',
    labels: [...RP, 'resolver', 'resolver_name', 'name', 'type', 'side'],
    perProbe: true,
  }),
  dnsTtl: def({
    name: 'mailprobe_dns_ttl_seconds',
    help: 'Remaining TTL of the last answer from the resolver.',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name', 'name', 'type'],
    perProbe: true,
  }),
  dnsResolverStale: def({
    name: 'mailprobe_dns_resolver_stale_seconds',
    help: 'How long past the authoritative change plus the old TTL the resolver still returned the pre-change answer.',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name', 'name'],
    perProbe: true,
  }),
  dnsTtlViolation: def({
    name: 'mailprobe_dns_ttl_violation',
    help: '1 if the resolver returned the pre-change answer after the old TTL had run out.',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name', 'name'],
    perProbe: true,
  }),
  dnsTtlTested: def({
    name: 'mailprobe_dns_ttl_tested',
    help: '1 once the resolver has been observed across a TTL expiry (answered after the old answer had run out), so mailprobe_dns_ttl_violation says whether it honours the TTL; 0: not yet known.',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name', 'name'],
    perProbe: true,
  }),
  dnsTtlExtension: def({
    name: 'mailprobe_dns_ttl_extension_seconds',
    help: 'How far the TTL the resolver reported exceeded the authoritative TTL (0 if not).',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'resolver', 'resolver_name', 'name'],
    perProbe: true,
  }),
  safeToSwitch: def({
    name: 'mailprobe_safe_to_switch_timestamp_seconds',
    help: 'When switching the address is safe: the lowered TTL first seen at the authoritative servers plus the TTL that held before (Unix time).',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'name'],
    perProbe: true,
  }),
  safeToDecommission: def({
    name: 'mailprobe_safe_to_decommission',
    help: '1 if no resolver has returned the old IP for the configured quiet time.',
    type: 'gauge',
    origin: 'result',
    labels: [...RP, 'name'],
    perProbe: true,
  }),
  fcrdnsOk: def({
    name: 'mailprobe_fcrdns_ok',
    help: '1 if the server IP has a PTR whose name resolves back to the same IP.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  fcrdnsOkWhenServed: def({
    name: 'mailprobe_fcrdns_ok_when_served',
    help: '1 if forward-confirmed reverse DNS holds for the server IP once the mail host points at it (a PTR name is the mail host, or a name of its own resolves back to the IP).',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  ptrInfo: def({
    name: 'mailprobe_ptr_info',
    help: 'The PTR names of the server IP (sorted, comma-separated; "(none)" without a PTR); 1 on the current names, series of earlier names removed.',
    type: 'gauge',
    origin: 'result',
    oneOf: 'ptr',
    labels: ['ip', 'side', 'ptr'],
  }),
  ptrMatchesMailHost: def({
    name: 'mailprobe_ptr_matches_mail_host',
    help: '1 if a PTR name of the server IP is the mail host.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  spfPass: def({
    name: 'mailprobe_spf_pass',
    help: '1 if SPF of the envelope domain passes for the server IP.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  dkimKeyPresent: def({
    name: 'mailprobe_dkim_key_present',
    help: '1 if the DKIM key of the selector is published and parses.',
    type: 'gauge',
    origin: 'result',
    labels: ['selector'],
  }),
  dmarcPresent: def({
    name: 'mailprobe_dmarc_present',
    help: '1 if the domain publishes a valid DMARC record.',
    type: 'gauge',
    origin: 'result',
    labels: ['domain'],
  }),
  mtaStsOk: def({
    name: 'mailprobe_mta_sts_ok',
    help: '1 if no MTA-STS policy is published or the published policy lists the mail host.',
    type: 'gauge',
    origin: 'result',
    labels: ['domain'],
  }),
  mtaStsMode: def({
    name: 'mailprobe_mta_sts_mode',
    help: 'Mode of the published MTA-STS policy (enforce, testing, none; absent: no policy); 1 on the current mode, series of other modes removed.',
    type: 'gauge',
    origin: 'result',
    oneOf: 'mode',
    labels: ['domain', 'mode'],
  }),
  tlsaPresent: def({
    name: 'mailprobe_tlsa_present',
    help: '1 if TLSA records exist at _25._tcp of the mail host.',
    type: 'gauge',
    origin: 'result',
    labels: ['name'],
  }),
  tlsaMatch: def({
    name: 'mailprobe_tlsa_match',
    help: '1 if a TLSA record published at _25._tcp of the mail host matches the certificate the destination IP presented (DANE usages 3/2, and 1/0 with a verifying chain); absent without TLSA records.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side'],
  }),
  dnsblListed: def({
    name: 'mailprobe_dnsbl_listed',
    help: '1 if the server IP is listed on the blocklist.',
    type: 'gauge',
    origin: 'result',
    labels: ['ip', 'side', 'list'],
  }),
  dnsblErrors: def({
    name: 'mailprobe_dnsbl_errors_total',
    help: 'Blocklist queries that gave no usable answer (127.255.255.x refusals, timeouts).',
    type: 'counter',
    origin: 'result',
    labels: ['ip', 'side', 'list'],
  }),
  roundtripDuration: def({
    name: 'mailprobe_roundtrip_duration_seconds',
    help: 'Time from sending a test message via a destination IP until the sink received it.',
    type: 'histogram',
    origin: 'result',
    labels: [...RP, 'via_ip', 'side'],
    buckets: ROUNDTRIP_BUCKETS,
  }),
  roundtrips: def({
    name: 'mailprobe_roundtrip_total',
    help: 'Round-trip messages by result: delivered, lost (sent, not arrived by the deadline) or failed (the server did not take it).',
    type: 'counter',
    origin: 'result',
    labels: [...RP, 'via_ip', 'side', 'result'],
  }),
  roundtripAuth: def({
    name: 'mailprobe_roundtrip_auth',
    help: 'Receiver-side verdict (spf/dkim/dmarc/fcrdns) of the last round-trip message per delivering IP; 1 on the current result.',
    type: 'gauge',
    origin: 'result',
    oneOf: 'result',
    labels: ['via_ip', 'method', 'result'],
  }),
  mtaInboundSessions: def({
    name: 'mailprobe_mta_inbound_sessions_total',
    help: 'Inbound SMTP sessions a mail server log follower (mailprobe mta-log, its id in server) saw per server IP, by client network (top networks of each interval, the rest "other").',
    type: 'counter',
    origin: 'result',
    labels: ['server', 'ip', 'side', 'client_net'],
  }),
  mtaInboundMessages: def({
    name: 'mailprobe_mta_inbound_messages_total',
    help: 'Messages a mail server accepted from SMTP clients (queued), per server IP, by client network (top networks of each interval, the rest "other").',
    type: 'counter',
    origin: 'result',
    labels: ['server', 'ip', 'side', 'client_net'],
  }),
  mtaLastInboundSession: def({
    name: 'mailprobe_mta_last_inbound_session_timestamp_seconds',
    help: 'When the last inbound SMTP session reached the server IP (Unix time); when none since the log follower started, when it started.',
    type: 'gauge',
    origin: 'result',
    labels: ['server', 'ip', 'side'],
  }),
  mtaLogLines: def({
    name: 'mailprobe_mta_log_lines_total',
    help: 'Mail server log lines the follower read, by result (known: of the Postfix or Exim grammar; unknown: neither, counted and skipped).',
    type: 'counter',
    origin: 'result',
    labels: ['server', 'result'],
  }),
  mtaInboundQuiet: def({
    name: 'mailprobe_mta_inbound_quiet',
    help: '1 when no inbound SMTP session reached the server IP for probes.decommission_quiet (judged by its log follower, which has read the log at least that long), else 0.',
    type: 'gauge',
    origin: 'result',
    labels: ['server', 'ip', 'side'],
  }),
  inboxDuration: def({
    name: 'mailprobe_inbox_duration_seconds',
    help: 'Time from sending a test message via a server IP until the receiver took it into the seed mailbox (its INTERNALDATE).',
    type: 'histogram',
    origin: 'result',
    labels: [...RP, 'receiver', 'via_ip', 'side'],
    buckets: ROUNDTRIP_BUCKETS,
  }),
  inboxes: def({
    name: 'mailprobe_inbox_total',
    help: 'Inbox-placement test messages by result: inbox, spam, other (another folder), lost (not found by the deadline) or failed (not sent, or the mailbox could not be read).',
    type: 'counter',
    origin: 'result',
    labels: [...RP, 'receiver', 'via_ip', 'side', 'result'],
  }),
  inboxAuth: def({
    name: 'mailprobe_inbox_auth',
    help: 'The receiver’s own Authentication-Results verdict (spf/dkim/dmarc/arc) on the last test message via a server IP; 1 on the current result.',
    type: 'gauge',
    origin: 'result',
    oneOf: 'result',
    labels: [...RP, 'receiver', 'via_ip', 'side', 'method', 'result'],
    perProbe: true,
  }),
  checks: def({
    name: 'mailprobe_checks_total',
    help: 'Check results received by type and outcome (success or the error class).',
    type: 'counter',
    origin: 'result',
    labels: [...RP, 'type', 'result'],
  }),
  probeLastPush: def({
    name: 'mailprobe_probe_last_push_timestamp_seconds',
    help: 'When the probe last pushed a batch that was accepted (Unix time).',
    type: 'gauge',
    origin: 'collector',
    labels: [...RP],
  }),
  probeSpoolBytes: def({
    name: 'mailprobe_probe_spool_bytes',
    help: 'Bytes waiting in the probe spool, as the probe last reported.',
    type: 'gauge',
    origin: 'collector',
    labels: [...RP],
  }),
  probeSpoolDropped: def({
    name: 'mailprobe_probe_spool_dropped_batches',
    help: 'Batches the probe dropped from a full spool since it started, as it last reported.',
    type: 'gauge',
    origin: 'collector',
    labels: [...RP],
  }),
  serverInfo: def({
    name: 'mailprobe_server_info',
    help: 'The servers of the plan (cutover.servers): 1 per IP with its side and name (default: the IP), for panels to join on ip.',
    type: 'gauge',
    origin: 'plan',
    labels: ['ip', 'side', 'server_name'],
  }),
  cutoverWindowActive: def({
    name: 'mailprobe_cutover_window_active',
    help: '1 while the plan cutover window is open.',
    type: 'gauge',
    origin: 'plan',
    labels: [],
  }),
  cutoverWindowStart: def({
    name: 'mailprobe_cutover_window_start_timestamp_seconds',
    help: 'Start of the cutover window (Unix time).',
    type: 'gauge',
    origin: 'plan',
    labels: [],
  }),
  cutoverWindowEnd: def({
    name: 'mailprobe_cutover_window_end_timestamp_seconds',
    help: 'End of the cutover window (Unix time).',
    type: 'gauge',
    origin: 'plan',
    labels: [],
  }),
  collectorBatches: def({
    name: 'mailprobe_collector_batches_total',
    help: 'Batches received by result (accepted, duplicate, rejected; dry_run: a preflight dry run, nothing applied).',
    type: 'counter',
    origin: 'collector',
    labels: ['result'],
  }),
  collectorRejections: def({
    name: 'mailprobe_collector_rejections_total',
    help: 'Rejected requests by error code.',
    type: 'counter',
    origin: 'collector',
    labels: ['code'],
  }),
  collectorResults: def({
    name: 'mailprobe_collector_results_total',
    help: 'Results applied from accepted batches.',
    type: 'counter',
    origin: 'collector',
    labels: [],
  }),
  collectorSeries: def({
    name: 'mailprobe_collector_probe_series',
    help: 'Distinct series a probe has written (bounded by collector.max_series_per_probe).',
    type: 'gauge',
    origin: 'collector',
    labels: ['probe'],
  }),
  collectorIngestDuration: def({
    name: 'mailprobe_collector_ingest_duration_seconds',
    help: 'Time to validate and apply one batch.',
    type: 'histogram',
    origin: 'collector',
    labels: [],
    buckets: HTTP_BUCKETS,
  }),
  // Remote write (collector/outputs/remote-write.ts), exported on the collector's /metrics.
  collectorRemoteWriteSamples: def({
    name: 'mailprobe_collector_remote_write_samples_total',
    help: 'Samples handed to the remote-write receiver by result (sent: accepted; rejected: refused with a 4xx other than 429, not retried).',
    type: 'counter',
    origin: 'collector',
    labels: ['result'],
  }),
  collectorRemoteWriteDropped: def({
    name: 'mailprobe_collector_remote_write_dropped_samples_total',
    help: 'Samples dropped before they were sent by reason (queue_full: oldest dropped from the bounded queue; shutdown: still queued at exit).',
    type: 'counter',
    origin: 'collector',
    labels: ['reason'],
  }),
  collectorRemoteWriteQueue: def({
    name: 'mailprobe_collector_remote_write_queue_samples',
    help: 'Samples waiting to be sent to the remote-write receiver (bounded by collector.remote_write.queue_max_samples).',
    type: 'gauge',
    origin: 'collector',
    labels: [],
  }),
  collectorRemoteWriteRequests: def({
    name: 'mailprobe_collector_remote_write_requests_total',
    help: 'Remote-write requests by result (success, retried: 5xx, 429 or network error, rejected: other 4xx).',
    type: 'counter',
    origin: 'collector',
    labels: ['result'],
  }),
  collectorRemoteWriteDuration: def({
    name: 'mailprobe_collector_remote_write_request_duration_seconds',
    help: 'Duration of one remote-write request until its answer.',
    type: 'histogram',
    origin: 'collector',
    labels: [],
    buckets: HTTP_BUCKETS,
  }),
  // The probe's own /metrics (probe/self-metrics.ts); the collector does not export these.
  probeSpooledBytes: def({
    name: 'mailprobe_probe_spooled_bytes',
    help: 'Bytes of results in the probe spool not yet accepted by every collector.',
    type: 'gauge',
    origin: 'probe',
    labels: [...RP],
  }),
  probeSpooledBatches: def({
    name: 'mailprobe_probe_spooled_batches',
    help: 'Batches in the probe spool not yet accepted by every collector.',
    type: 'gauge',
    origin: 'probe',
    labels: [...RP],
  }),
  probeSpoolDroppedTotal: def({
    name: 'mailprobe_probe_spool_dropped_batches_total',
    help: 'Batches the probe dropped from its full spool (oldest first).',
    type: 'counter',
    origin: 'probe',
    labels: [...RP],
  }),
  probePushes: def({
    name: 'mailprobe_probe_pushes_total',
    help: 'Push attempts per collector by result (accepted, duplicate, rejected: dropped for that collector, unauthorized, error: retried).',
    type: 'counter',
    origin: 'probe',
    labels: [...RP, 'collector', 'result'],
  }),
  probeCheckRuns: def({
    name: 'mailprobe_probe_check_runs_total',
    help: 'Check runs by type and outcome (success, or the error class of the first failed result).',
    type: 'counter',
    origin: 'probe',
    labels: [...RP, 'type', 'result'],
  }),
  probeCheckDuration: def({
    name: 'mailprobe_probe_check_duration_seconds',
    help: 'Wall time of one check run (until its results or its timeout).',
    type: 'histogram',
    origin: 'probe',
    labels: [...RP, 'type'],
    buckets: SMTP_BUCKETS,
  }),
  probeChecksInFlight: def({
    name: 'mailprobe_probe_checks_in_flight',
    help: 'Check runs in progress.',
    type: 'gauge',
    origin: 'probe',
    labels: [...RP],
  }),
} as const satisfies Record<string, MetricDef>;

export type MetricKey = keyof typeof METRICS;
export const METRIC_LIST: readonly MetricDef[] = Object.values(METRICS);

// ---- label sets, derived from the catalogue at compile time ----

/** The catalogue entry of a key, with its literal label names. */
export type MetricOf<K extends MetricKey> = (typeof METRICS)[K];
/** The label names of a metric (`never` for a metric without labels). */
export type LabelName<K extends MetricKey> = MetricOf<K>['labels'][number];
/** The keys of the metrics of one type. */
export type KeyOfType<T extends MetricType> = { [K in MetricKey]: MetricOf<K>['type'] extends T ? K : never }[MetricKey];
/** The keys of the metrics of one origin. */
export type KeyOfOrigin<O extends MetricOrigin> = { [K in MetricKey]: MetricOf<K>['origin'] extends O ? K : never }[MetricKey];
/** The keys of the one-of gauges. */
export type OneOfKey = { [K in MetricKey]: MetricOf<K> extends { readonly oneOf: string } ? K : never }[MetricKey];
/** The label a one-of gauge keeps one value of. */
export type OneOfLabel<K extends OneOfKey> = MetricOf<K>['oneOf'];

/** The label a one-of gauge keeps one value of; undefined for any other metric. */
export function oneOfLabel(key: MetricKey): string | undefined {
  return (METRICS[key] as MetricDef).oneOf;
}

/** The keys of the metrics of one origin, in catalogue order. */
export function metricsOf<O extends MetricOrigin>(origin: O): KeyOfOrigin<O>[] {
  return (Object.keys(METRICS) as MetricKey[]).filter((k): k is KeyOfOrigin<O> => METRICS[k].origin === origin);
}

/** Label values are cut to this many characters by default (collector.max_label_length). */
export const DEFAULT_MAX_LABEL_LENGTH = 128;
