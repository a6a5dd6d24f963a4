/**
 * The lab cutover: a whole mail migration on loopback, compressed into a couple of minutes.
 * The DNS world (authoritative server + caching resolvers), the old and new MTAs on 127.0.0.2
 * and 127.0.0.3, a collector and one probe per region play the cutover plan of the README's quick start: lower the TTL,
 * switch the address, raise the TTL, turn the old server off.
 *
 * With Dovecot installed (lab/dovecot.ts) the lab also plays a real receiver for the inbox check:
 * a seed mailbox behind a receiver MX (lab/receiver.ts) that files mail from the new IP as spam
 * until the TTL is raised (the new IP's reputation built), then takes it into the inbox.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { buildCollector } from '../collector/app.js';
import type { Output } from '../collector/outputs/output.js';
import type { SeriesStore } from '../collector/store/series-store.js';
import { hashToken } from '../collector/plugins/auth.js';
import { validatePlan } from '../config/load.js';
import type { PlanConfig } from '../config/schema.js';
import { freePort } from './ports.js';
import { parseListen } from '../config/specs.js';
import { createMtaLog } from '../probe/mtalog/index.js';
import { createProbe, type Probe } from '../probe/runtime.js';
import { closeSharedSinks } from '../probe/sink/shared.js';
import { dnsResolver } from '../probe/sink/index.js';
import { dovecotUnavailable, startDovecot } from './dovecot.js';
import { startReceiver, type LabReceiver } from './receiver.js';
import { namedLabResolver, startDnsWorld, type DnsWorld, type LabResolverRole } from './dns/world.js';
import { makeLabCerts, tlsaRecordFor } from './mta/certs.js';
import { startMtas, type LabMtas } from './mta/index.js';
import { startSenders } from './mta/senders.js';
import { compressRules, startPrometheus, type RunningPrometheus } from './prometheus.js';
import { which } from './which.js';

export const LAB_DOMAIN = 'company.test';
export const LAB_MAIL_HOST = `mail.${LAB_DOMAIN}`;
export const LAB_OLD_IP = '127.0.0.2';
export const LAB_NEW_IP = '127.0.0.3';
export const LAB_RT_ADDRESS = `mailprobe-rt@${LAB_DOMAIN}`;
/** The receiver domain of the lab's seed mailbox (its receiver label is `own`). */
export const LAB_SEED_DOMAIN = 'mailbox.test';
export const LAB_SEED_ADDRESS = `seed@${LAB_SEED_DOMAIN}`;
/** The lab's blocklist zone (served by the lab's authoritative server; nothing listed at start). */
export const LAB_DNSBL = 'bl.lab.test';

/** Which lab resolvers each region's probe asks, so regions see different behaviour. */
/** The log follower beside the old MTA (its token id); it pushes like a probe, so the collector lists it among the probes. */
export const MTA_LOG_ID = 'lab-mta-old';
const ROLES: readonly LabResolverRole[] = ['honest', 'ignore', 'clamp', 'stale'];
const REGION_RESOLVERS: Record<string, readonly LabResolverRole[]> = {
  eu: ['honest', 'clamp'],
  us: ['honest', 'ignore', 'stale'],
  ap: ['honest', 'ignore', 'clamp', 'stale'],
};

export interface LabCutoverOptions {
  /** Length of the whole timeline. Default 120 s; every step and TTL scales with it. */
  durationMs?: number;
  /** Collector listen address; if taken, a free port is used. Default 127.0.0.1:9464. */
  collectorListen?: string;
  regions?: readonly string[];
  logger?: Logger;
  /** Start a real Prometheus with the deploy rules (compressed to the lab's time scale). Default: if installed. */
  /** A Dovecot seed mailbox for the inbox check (default: when Dovecot is installed). */
  inbox?: boolean;
  /** The old MTA's log follower (mailprobe mta-log, in-process). Default true. */
  mtaLog?: boolean;
  prometheus?: boolean;
  /** Called for each timeline event as it happens. */
  onEvent?: (e: LabEvent) => void;
  /** Play the timeline (DNS steps, old server off). Default true; false holds the world still for fault drills. */
  timeline?: boolean;
  /** The cutover window as ms offsets from the start (may be negative). Default: from the timeline. */
  window?: { start: number; end: number };
  /** probes.interval (outside the window). Default 4s. */
  interval?: string;
  /** Also make a certificate that expires this many seconds after the start (MTA fault `expiring-cert`). */
  expiringCertSeconds?: number;
  /** The collector's `collector.remote_write` section (as written in a plan). Default none. */
  remoteWrite?: Readonly<Record<string, unknown>>;
  /** Further collector outputs (tests tap the accepted results). */
  outputs?: readonly Output[];
}

export interface LabEvent {
  at: number;
  label: string;
}

export interface LabStep {
  /** Unix ms. */
  at: number;
  label: string;
  run?: () => void | Promise<void>;
}

export interface LabCutover {
  readonly plan: PlanConfig;
  readonly collectorUrl: string;
  /** The collector's registry (a new one after {@link LabCutover.startCollector}). */
  readonly registry: Registry;
  /** The collector's result series (a new store after {@link LabCutover.startCollector}). */
  readonly store: SeriesStore | undefined;
  readonly dns: DnsWorld;
  readonly mtas: LabMtas;
  readonly probes: readonly Probe[];
  /** The Prometheus scraping the collector, when one runs. */
  readonly prometheus: RunningPrometheus | undefined;
  readonly startedAt: number;
  readonly endsAt: number;
  readonly steps: readonly LabStep[];
  /** Events that have happened. */
  readonly events: readonly LabEvent[];
  /** Resolves at the end of the timeline. */
  readonly done: Promise<void>;
  /** Stops one region's probe (a probe gone silent); its spool stays. */
  stopProbe(region: string): Promise<void>;
  /** Starts a fresh probe for a region whose probe was stopped (same id, token and spool). */
  startProbe(region: string): Promise<void>;
  /** Stops the collector (its address refuses connections). */
  stopCollector(): Promise<void>;
  /** Starts a fresh collector (empty registry) on the same address. */
  startCollector(): Promise<void>;
  stop(): Promise<void>;
}

/** The compressed timeline, as fractions of the duration, with the TTLs it implies. */
export function labTimeline(durationMs: number) {
  const s = durationMs / 120_000;
  const longTtl = Math.max(2, Math.round(20 * s));
  const shortTtl = Math.max(1, Math.round(4 * s));
  const lowerAt = Math.round(15_000 * s);
  const safeAt = lowerAt + longTtl * 1000;
  return {
    longTtl,
    shortTtl,
    lowerAt,
    /** When the old long TTL has run out everywhere honest: the window opens. */
    windowStart: safeAt,
    switchAt: safeAt + Math.round(5_000 * s),
    raiseAt: Math.round(66_000 * s),
    oldOffAt: Math.round(84_000 * s),
    windowEnd: Math.round(96_000 * s),
  };
}

export async function startLabCutover(opts: LabCutoverOptions = {}): Promise<LabCutover> {
  const durationMs = opts.durationMs ?? 120_000;
  const regions = opts.regions ?? ['eu', 'us', 'ap'];
  const t = labTimeline(durationMs);
  const log = opts.logger;
  // Set again once the slow parts are up (see below); the DNS timeline and the plan count from it.
  let startedAt = Date.now();
  const closers: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const c of closers.reverse()) await c().catch((e: unknown) => log?.warn({ err: e }, 'lab: stopping a part failed'));
    closers.length = 0;
  };

  try {
    const dns = await startDnsWorld({
      domain: LAB_DOMAIN,
      mailHost: LAB_MAIL_HOST,
      oldIp: LAB_OLD_IP,
      newIp: LAB_NEW_IP,
      initial: { ttl: t.longTtl, serve: 'old' },
      timeline: [
        { at: t.lowerAt, ttl: t.shortTtl, label: 'lower TTL' },
        { at: t.switchAt, serve: 'new', label: 'switch to the new IP' },
        { at: t.raiseAt, ttl: t.longTtl, label: 'raise TTL' },
      ],
      // The first fetch (at the start, long TTL) must outlive the switch by more than the short
      // TTL: with TTL + longTtl it expired right at the switch and no resolver ever broke a TTL.
      ignoreExtraSeconds: Math.max(4, 2 * t.longTtl),
      clampMinTtl: Math.max(2, Math.round(t.longTtl / 2)),
      staleSeconds: t.longTtl * 2,
      mtaStsId: '20261204',
    });
    closers.push(() => dns.close());
    dns.auth.updateZone({ dnsbl: [{ zone: LAB_DNSBL, listed: {} }] });

    const dkim = { domainName: LAB_DOMAIN, keySelector: 's2026', privateKey: dns.dkimKey.privateKey };
    const certs = await makeLabCerts({
      mailHost: LAB_MAIL_HOST,
      ...(opts.expiringCertSeconds === undefined ? {} : { expiringInSeconds: opts.expiringCertSeconds }),
    });
    closers.push(() => certs.cleanup());
    // DANE: a 3 1 1 record for the mail host's key (and for the expiring certificate's, as in a
    // key rollover), so the TLSA match of both servers has data and matches.
    dns.auth.updateZone({ tlsa: [certs.mailHost, ...(certs.expiring ? [certs.expiring] : [])].map((c) => tlsaRecordFor(c.cert, 3, 1, 1)) });
    // The old MTA writes a Postfix-style maillog that the lab's log follower (mailprobe mta-log) reads.
    const logDir = mkdtempSync(join(tmpdir(), 'mailprobe-lab-log-'));
    closers.push(async () => rmSync(logDir, { recursive: true, force: true }));
    const oldLog = join(logDir, 'old-maillog');
    // There before the first session, so the follower does not log that it waits for it.
    writeFileSync(oldLog, '');
    const mtas = await startMtas({
      certs,
      mailHost: LAB_MAIL_HOST,
      domain: LAB_DOMAIN,
      relay: [LAB_RT_ADDRESS],
      dkim: { old: dkim, new: dkim },
      logFiles: { old: oldLog },
    });
    closers.push(() => mtas.close());
    const sinkPort = await freePort('127.0.0.1');
    mtas.setSink({ host: '127.0.0.1', port: sinkPort });
    closers.push(() => closeSharedSinks());
    // The probes sign test messages with this secret (an operator sets it; the lab makes one).
    process.env.MAILPROBE_RT_SECRET ??= randomBytes(24).toString('base64url');

    // A real receiver for the inbox check, when Dovecot is installed: Dovecot behind a receiver MX
    // that files mail from the new IP as spam until the TTL is raised.
    let seed: { imapPort: number; receiver: LabReceiver } | undefined;
    const noDovecot = opts.inbox === false ? 'turned off' : dovecotUnavailable();
    if (noDovecot === null) {
      process.env.MAILPROBE_LAB_IMAP_PASSWORD ??= randomBytes(12).toString('base64url');
      const dovecot = await startDovecot({ users: [{ user: LAB_SEED_ADDRESS, pass: process.env.MAILPROBE_LAB_IMAP_PASSWORD }] });
      closers.push(() => dovecot.stop());
      const receiver = await startReceiver({
        name: `mx.${LAB_SEED_DOMAIN}`,
        domains: [LAB_SEED_DOMAIN],
        lmtp: { host: dovecot.host, port: dovecot.lmtpPort },
        resolver: dnsResolver(dns.resolvers.honest.address),
      });
      closers.push(() => receiver.close());
      receiver.setPlacement(LAB_NEW_IP, 'spam');
      mtas.setRoutes([{ domain: LAB_SEED_DOMAIN, host: receiver.host, port: receiver.port }]);
      seed = { imapPort: dovecot.imapPort, receiver };
    } else log?.info({ reason: noDovecot }, 'lab: no seed mailbox for the inbox check');

    // The lab's clock starts once its slow parts (certificates, MTAs, Dovecot) are up and just before
    // the collector and the probes: a probe whose first question comes after the TTL was lowered
    // never sees it lowered and cannot say when switching is safe (on a busy machine Dovecot alone
    // took longer than the short lab's 7.5 s before the TTL is lowered).
    startedAt = Date.now();
    dns.auth.startTimeline(startedAt);
    if (opts.timeline === false) dns.auth.set(dns.auth.state());

    const tokens = Object.fromEntries([...regions.map((r) => `lab-${r}`), MTA_LOG_ID].map((id) => [id, randomBytes(18).toString('base64url')]));
    const planFor = (resolvers: readonly { address: string; name: string }[], collectors: readonly string[] = []) =>
      validatePlan(
        {
          cutover: {
            domain: LAB_DOMAIN,
            mail_host: LAB_MAIL_HOST,
            servers: [
              { ip: LAB_OLD_IP, side: 'old', name: 'provider-a', port: mtas.old.port },
              { ip: LAB_NEW_IP, side: 'new', name: 'provider-b', port: mtas.new.port },
            ],
            window: {
              start: new Date(startedAt + (opts.window?.start ?? t.windowStart)).toISOString(),
              end: new Date(startedAt + (opts.window?.end ?? t.windowEnd)).toISOString(),
            },
            dkim_selectors: ['s2026'],
            dnsbl: [LAB_DNSBL],
          },
          probes: {
            smtp: {
              mode: 'rcpt',
              tls: 'required',
              from: `probe@${LAB_DOMAIN}`,
              to: `postmaster@${LAB_DOMAIN}`,
              helo: `probe.${LAB_DOMAIN}`,
              ca_file: mtas.certs.caFile,
              connect_timeout: '1s',
              banner_timeout: '1500ms',
            },
            roundtrip: {
              to: LAB_RT_ADDRESS,
              deadline: `${Math.max(5, Math.round(t.longTtl / 2))}s`,
              sink: { listen: `127.0.0.1:${sinkPort}`, resolver: dns.resolvers.honest.address, name: `sink.${LAB_DOMAIN}` },
            },
            ...(seed
              ? {
                  inbox: {
                    deadline: `${Math.max(5, Math.round(t.longTtl / 2))}s`,
                    every: '10s',
                    poll: '250ms',
                    mailboxes: [
                      {
                        receiver: 'own',
                        address: LAB_SEED_ADDRESS,
                        imap: { host: '127.0.0.1', port: seed.imapPort, tls: 'none', user: LAB_SEED_ADDRESS, password_env: 'MAILPROBE_LAB_IMAP_PASSWORD' },
                      },
                    ],
                  },
                }
              : {}),
            interval: opts.interval ?? '4s',
            window_interval: '2s',
            timeout: '2s',
            resolvers,
            authoritative: [dns.auth.address],
            decommission_quiet: `${Math.max(4, t.longTtl)}s`,
            dns: {
              types: ['A', 'MX'],
              query_timeout: '1s',
              lookup_resolver: dns.resolvers.honest.address,
              mta_sts_url: `${dns.mtaStsUrl}/.well-known/mta-sts.txt`,
              ttl_allowance: '1s',
            },
            push: { collectors, batch_max_age: '1s' },
          },
          collector: {
            listen: opts.collectorListen ?? '127.0.0.1:9464',
            tokens: Object.fromEntries(Object.entries(tokens).map(([id, tok]) => [id, hashToken(tok)])),
            ...(opts.remoteWrite ? { remote_write: opts.remoteWrite } : {}),
          },
        },
        'lab plan',
      );
    const plan = planFor(ROLES.map((role) => namedLabResolver(dns, role)));

    let registry = new Registry();
    const newCollector = () =>
      buildCollector({ plan, registry, logger: log ? log.child({ part: 'collector' }) : false, sweepIntervalMs: 5_000, outputs: [...(opts.outputs ?? [])] });
    let { app, store } = await newCollector();
    let collectorUp = true;
    closers.push(async () => {
      if (collectorUp) await app.close();
    });
    const { host, port } = parseListen(plan.collector.listen);
    try {
      await app.listen({ host, port });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      log?.info({ listen: plan.collector.listen }, 'lab: collector address taken, using a free port');
      await app.listen({ host, port: 0 });
    }
    const addr = app.server.address();
    const collectorPort = typeof addr === 'object' && addr ? addr.port : port;
    const collectorUrl = `http://127.0.0.1:${collectorPort}`;

    let prometheus: RunningPrometheus | undefined;
    if (opts.prometheus ?? which('prometheus') !== null) {
      // The lab's two minutes stand for a cutover of hours: alert `for:` and ranges shrink alike.
      const factor = Math.max(1, Math.round((120 * 60_000) / durationMs));
      // Rules from the first scrape on: a fresh Prometheus scrapes after ~5 s, longer than the compressed `for:` of the rules over `up`.
      const started = await startPrometheus({
        targets: [new URL(collectorUrl).host],
        ruleTransform: (text) => compressRules(text, factor),
        rulesAfterFirstScrape: true,
      });
      prometheus = started;
      closers.push(() => started.stop());
    }

    const spoolRoot = mkdtempSync(join(tmpdir(), 'mailprobe-lab-'));
    closers.push(async () => rmSync(spoolRoot, { recursive: true, force: true }));
    const probes: Probe[] = [];
    const running = new Map<string, Probe>();
    const startProbe = async (region: string) => {
      if (running.has(region)) throw new Error(`lab: the ${region} probe is running`);
      const probePlan = planFor(
        (REGION_RESOLVERS[region] ?? ROLES).map((role) => namedLabResolver(dns, role)),
        [collectorUrl],
      );
      const id = `lab-${region}`;
      const probe = createProbe({
        plan: probePlan,
        id,
        region,
        token: tokens[id],
        spoolDir: join(spoolRoot, id),
        ...(log ? { logger: log.child({ part: 'probe' }) } : {}),
      });
      await probe.start();
      running.set(region, probe);
      const at = probes.findIndex((p) => p.region === region);
      if (at >= 0) probes[at] = probe;
      else probes.push(probe);
    };
    const stopProbe = async (region: string) => {
      const probe = running.get(region);
      running.delete(region);
      await probe?.stop({ graceMs: 2000, flushMs: 2000 });
    };
    closers.push(async () => {
      for (const region of [...running.keys()]) await stopProbe(region);
    });
    for (const region of regions) await startProbe(region);

    // Beside the old MTA: the log follower (mailprobe mta-log, in-process), not counting the probes
    // (they connect from 127.0.0.1), and two senders of the world: one follows the honest resolver,
    // one the resolver that ignores TTLs, so the old server keeps receiving after the switch.
    if (opts.mtaLog !== false) {
      const follower = createMtaLog({
        plan: planFor(
          ROLES.map((role) => namedLabResolver(dns, role)),
          [collectorUrl],
        ),
        id: MTA_LOG_ID,
        region: 'mta',
        token: tokens[MTA_LOG_ID],
        format: 'postfix',
        input: { file: oldLog, fromStart: true, pollMs: 200 },
        ips: [{ ip: LAB_OLD_IP }],
        ignoreClients: ['127.0.0.1/32'],
        spoolDir: join(spoolRoot, MTA_LOG_ID),
        ...(log ? { logger: log.child({ part: 'mta-log' }) } : {}),
      });
      await follower.start();
      closers.push(() => follower.stop());
    }
    const stopSenders = startSenders({
      senders: [
        { from: '127.0.10.25', resolver: dns.resolvers.honest.address },
        { from: '127.0.20.25', resolver: dns.resolvers.ignore.address },
      ],
      mailHost: LAB_MAIL_HOST,
      to: `postmaster@${LAB_DOMAIN}`,
      ports: new Map([
        [LAB_OLD_IP, mtas.old.port],
        [LAB_NEW_IP, mtas.new.port],
      ]),
      everyMs: 3000,
      ...(log ? { log: log.child({ part: 'senders' }) } : {}),
    });
    closers.push(stopSenders);

    const events: LabEvent[] = [];
    const steps: LabStep[] = [
      { at: startedAt, label: `serving the old IP with TTL ${t.longTtl}s` },
      { at: startedAt + t.lowerAt, label: `TTL lowered to ${t.shortTtl}s` },
      { at: startedAt + t.windowStart, label: 'cutover window opens (old TTL has run out)' },
      { at: startedAt + t.switchAt, label: 'A record switched to the new IP' },
      { at: startedAt + t.raiseAt, label: `TTL raised to ${t.longTtl}s` },
      ...(seed
        ? [
            {
              at: startedAt + t.raiseAt,
              label: 'the seed mailbox takes the new IP into the inbox (reputation built)',
              run: () => seed?.receiver.setPlacement(LAB_NEW_IP, null),
            },
          ]
        : []),
      { at: startedAt + t.oldOffAt, label: 'old server turned off', run: () => mtas.setFault('old', { kind: 'refuse' }) },
      { at: startedAt + t.windowEnd, label: 'cutover window closes' },
      { at: startedAt + durationMs, label: 'end of the lab timeline' },
    ];
    const timers = (opts.timeline === false ? steps.filter((s) => s.at === startedAt || s.at === startedAt + durationMs) : steps).map((s) =>
      setTimeout(
        () => {
          void Promise.resolve(s.run?.()).then(() => {
            const e = { at: Date.now(), label: s.label };
            events.push(e);
            log?.info({ event: s.label }, 'lab: timeline');
            opts.onEvent?.(e);
          });
        },
        Math.max(0, s.at - Date.now()),
      ),
    );
    closers.push(async () => timers.forEach(clearTimeout));
    const done = new Promise<void>((resolve) => {
      const end = setTimeout(resolve, Math.max(0, startedAt + durationMs - Date.now()) + 50);
      closers.push(async () => {
        clearTimeout(end);
        resolve();
      });
    });

    let stopped: Promise<void> | undefined;
    return {
      plan,
      collectorUrl,
      get registry() {
        return registry;
      },
      get store() {
        return store;
      },
      dns,
      mtas,
      probes,
      prometheus,
      startedAt,
      endsAt: startedAt + durationMs,
      steps,
      events,
      done,
      stopProbe,
      startProbe,
      async stopCollector() {
        if (!collectorUp) return;
        collectorUp = false;
        await app.close();
      },
      async startCollector() {
        if (collectorUp) return;
        registry = new Registry();
        ({ app, store } = await newCollector());
        await app.listen({ host: '127.0.0.1', port: collectorPort });
        collectorUp = true;
      },
      stop: () => (stopped ??= stopAll()),
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
