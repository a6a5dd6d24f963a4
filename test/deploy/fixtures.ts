/**
 * Realistic batches of every check type for the dashboard and rule tests, in the lab's world of
 * bench/lib/plan.ts: mail.company.test, old server 127.0.0.2, new server 127.0.0.3. Built by
 * hand as protocol/results.ts types, the way probes in two regions report mid-cutover: most
 * resolvers already on the new IP, one eu resolver keeping the old answer past its TTL, a
 * greylisting reply from the new server, a lost round trip, a blocklist refusing to answer.
 */
import type { CheckResult, DnsResult } from '../../protocol/results.js';
import type { Batch } from '../../protocol/wire.js';
import { dnsblRefused, dnsTimeout, roundtripLost, ttlResult } from '../support/results.js';

export const MAIL_HOST = 'mail.company.test';
export const OLD_IP = '127.0.0.2';
export const NEW_IP = '127.0.0.3';

export interface FixtureProbe {
  id: string;
  region: string;
  /** Resolver label → the side it answers for the mail host. */
  resolvers: Record<string, 'old' | 'new' | 'both'>;
  /** Resolver that keeps the old answer past the TTL, if any. */
  violator?: string;
}

export const FIXTURE_PROBES: readonly FixtureProbe[] = [
  { id: 'p-eu', region: 'eu', resolvers: { system: 'new', '8.8.8.8': 'new', '1.1.1.1': 'old' }, violator: '1.1.1.1' },
  { id: 'p-us', region: 'us', resolvers: { system: 'new', '9.9.9.9': 'both', '8.8.4.4': 'old' } },
];

const answersFor = (side: 'old' | 'new' | 'both'): string[] => (side === 'old' ? [OLD_IP] : side === 'new' ? [NEW_IP] : [OLD_IP, NEW_IP]);

/** The results one probe produces in round `round` (0, 1, …) at time `t` (Unix ms). */
export function probeResults(p: FixtureProbe, round: number, t: number): CheckResult[] {
  const out: CheckResult[] = [];
  const jitter = (base: number, i = 0) => Math.round(base * (1 + 0.1 * ((round + i) % 5)) * 10_000) / 10_000;
  const dns = (resolver: string, side: 'old' | 'new' | 'both', qtype: 'A' | 'MX', i: number): DnsResult => ({
    type: 'dns',
    startedAt: t,
    durationSeconds: jitter(resolver === 'system' ? 0.0008 : 0.012, i),
    ok: true,
    resolver,
    authoritative: resolver.startsWith('auth:'),
    name: MAIL_HOST,
    qtype,
    transport: 'udp',
    rcode: 'NOERROR',
    answers: qtype === 'A' ? answersFor(side) : [`10 ${MAIL_HOST}.`],
    ttl: side === 'old' ? 3300 - round : 240 - round,
    side,
  });

  let i = 0;
  for (const [resolver, side] of Object.entries({ ...p.resolvers, 'auth:ns1.company.test': 'new' as const })) {
    out.push(dns(resolver, side, 'A', i++), dns(resolver, side, 'MX', i++));
  }
  out.push(dnsTimeout(t, { resolver: '192.0.2.53', name: MAIL_HOST, seconds: 2, code: 'DNS_TIMEOUT', message: 'no answer within 2s' }));

  for (const resolver of Object.keys(p.resolvers)) {
    const violation = resolver === p.violator;
    out.push(
      ttlResult(t, {
        resolver,
        name: MAIL_HOST,
        staleSeconds: violation ? 1500 + 15 * round : 0,
        violation,
        tested: true,
        extensionSeconds: violation ? 3000 : 0,
        safeToSwitchAt: t - 7_200_000,
        safeToDecommission: false,
      }),
    );
  }

  for (const [ip, side] of [
    [OLD_IP, 'old'],
    [NEW_IP, 'new'],
  ] as const) {
    out.push({ type: 'rdns', startedAt: t, durationSeconds: 0.004, ok: true, ip, side, ptrNames: [MAIL_HOST], fcrdns: true, matchesMailHost: true });
    out.push({ type: 'auth', startedAt: t, durationSeconds: 0.02, ok: true, method: 'spf', subject: ip, side, pass: true, detail: `pass: ip4:${ip}` });
    out.push({ type: 'dnsbl', startedAt: t, durationSeconds: 0.03, ok: true, ip, side, list: 'zen.spamhaus.org', listed: false, answers: [] });
    out.push(dnsblRefused(t, { ip, side, list: 'dbl.example-list.test', message: '127.255.255.254: query via a public resolver' }));
    // Even rounds: the counter of the failure class exists from the first round on, so rate() sees
    // the later increase (a counter's first appearance is invisible to rate()).
    const greylisted = side === 'new' && p.region === 'eu' && round % 2 === 0;
    out.push(
      greylisted
        ? {
            type: 'smtp',
            startedAt: t,
            durationSeconds: 0.19,
            ok: false,
            phase: 'rcpt',
            errorClass: 'temp_fail',
            code: 'SMTP_4XX',
            message: '451 4.7.1 Greylisted, try again later',
            ip,
            side,
            port: 587,
            mode: 'rcpt',
            phases: { connect: jitter(0.011), banner: jitter(0.04), ehlo: jitter(0.006), starttls: jitter(0.03), mail: jitter(0.005), rcpt: jitter(0.09) },
            replyCode: 451,
            enhancedCode: '4.7.1',
            banner: `220 ${MAIL_HOST} ESMTP`,
            bannerHost: MAIL_HOST,
            ehloHost: MAIL_HOST,
            tls: { version: 'TLSv1.3', certNames: [MAIL_HOST], certExpiry: Math.floor(t / 1000) + 86_400 * 75, verified: true },
          }
        : {
            type: 'smtp',
            startedAt: t,
            durationSeconds: 0.16,
            ok: true,
            ip,
            side,
            port: 587,
            mode: 'rcpt',
            phases: {
              connect: jitter(0.011, 1),
              banner: jitter(side === 'old' ? 0.35 : 0.04),
              ehlo: jitter(0.006),
              starttls: jitter(0.03),
              mail: jitter(0.005),
              rcpt: jitter(0.02, 2),
              quit: 0.002,
            },
            replyCode: 250,
            enhancedCode: '2.1.5',
            banner: `220 ${MAIL_HOST} ESMTP`,
            bannerHost: MAIL_HOST,
            ehloHost: MAIL_HOST,
            tls: { version: 'TLSv1.3', certNames: [MAIL_HOST], certExpiry: Math.floor(t / 1000) + 86_400 * (side === 'old' ? 20 : 75), verified: true },
            tlsa: { match: true, records: 1, detail: '3 1 1 matches the certificate' },
          },
    );
    out.push({
      type: 'roundtrip',
      startedAt: t,
      durationSeconds: jitter(side === 'old' ? 6.2 : 3.1),
      ok: true,
      viaIp: ip,
      side,
      messageId: `rt-${p.id}-${round}-${side}@probes.company.test`,
      delivered: true,
      latencySeconds: jitter(side === 'old' ? 6.1 : 3),
      sameClock: true,
      deliveringIp: ip,
      helo: MAIL_HOST,
      verdicts: { spf: 'pass', dkim: 'pass', dmarc: 'pass', fcrdns: 'pass' },
    });
  }
  if (p.region === 'us') {
    out.push(
      roundtripLost(t, {
        viaIp: NEW_IP,
        side: 'new',
        messageId: `rt-${p.id}-${round}-lost@probes.company.test`,
        seconds: 120,
        message: 'not received within 120s',
      }),
    );
  }
  // Inbox placement at a real receiver: via the old IP in the inbox; via the new IP in spam for
  // the us probe (a receiver that does not trust the new IP yet), in the inbox elsewhere.
  for (const [ip, side] of [
    [OLD_IP, 'old'],
    [NEW_IP, 'new'],
  ] as const) {
    const spam = side === 'new' && p.region === 'us';
    out.push({
      type: 'inbox',
      startedAt: t,
      durationSeconds: jitter(20),
      ok: true,
      receiver: 'gmail',
      viaIp: ip,
      side,
      messageId: `ib${round}${side}`,
      placement: spam ? 'spam' : 'inbox',
      folder: spam ? '[Gmail]/Spam' : 'INBOX',
      latencySeconds: jitter(side === 'old' ? 8 : 14),
      deliveringIp: ip,
      verdicts: { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none' },
    });
  }
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'dkim', subject: 's2026', pass: true, detail: 'k=rsa; 2048 bits' });
  out.push({
    type: 'auth',
    startedAt: t,
    durationSeconds: 0.01,
    ok: true,
    method: 'dmarc',
    subject: 'company.test',
    pass: true,
    detail: 'v=DMARC1; p=quarantine',
  });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.05, ok: true, method: 'mta-sts', subject: 'company.test', pass: true });
  out.push({ type: 'auth', startedAt: t, durationSeconds: 0.01, ok: true, method: 'tlsa', subject: MAIL_HOST, pass: false, detail: 'no TLSA records' });
  // The log follower beside the old server (mailprobe mta-log) reports with the eu probe's token:
  // one partner network still delivers to the old IP, the rest is "other"; now and then a line of no grammar.
  if (p.region === 'eu')
    out.push({
      type: 'mta',
      startedAt: t,
      durationSeconds: 0,
      ok: true,
      ips: [
        {
          ip: OLD_IP,
          side: 'old',
          sessions: [
            { net: '198.51.100.0/24', count: 3 + round },
            { net: 'other', count: 1 },
          ],
          messages: [{ net: '198.51.100.0/24', count: 2 + round }],
          lastSessionAt: t - 1000,
          quiet: false,
        },
      ],
      lines: 40,
      unknownLines: round % 2,
    });
  return out;
}

/** Batch `round` of a probe. */
export function probeBatch(p: FixtureProbe, round: number, t = Date.now()): Batch {
  return {
    probe: { id: p.id, region: p.region, version: '0.1.0', spool: { bytes: 4096 * (round + 1), batches: round + 1, dropped: 0 } },
    batch: { id: `${p.id}-${t}-${round}`.replace(/[^A-Za-z0-9_-]/g, '_'), seq: round, createdAt: t },
    results: probeResults(p, round, t),
  };
}
