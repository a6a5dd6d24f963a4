/**
 * rdns check: the PTR names of every server IP, forward confirmation (a PTR name resolves back
 * to the same IP: FCrDNS, which Gmail and Yahoo require of senders) and whether a PTR name is the
 * mail host. A missing PTR is a finding (ok, fcrdns false), not a failure; DNS errors are failures.
 *
 * The cutover makes "FCrDNS now" misleading on its own: an IP whose PTR is the mail host confirms
 * only while the mail host points at it. So the new IP does not confirm before the switch and the
 * old one no longer does after it, both as planned. Whether FCrDNS *will* hold once the mail host
 * points at the IP is `fcrdns || matchesMailHost` (a name of its own that resolves back, or the
 * mail host itself); the collector exports it as mailprobe_fcrdns_ok_when_served and the message
 * says which case applies.
 */
import { isIP } from 'node:net';
import type { CheckContext, CheckSpec } from '../check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { RdnsResult, RdnsTarget } from '../../protocol/checks/rdns.js';
import { assertRcode, recordsOf } from '../dns/client.js';
import { canonicalIp } from '../dns/classify.js';
import { dnsSettings, lookupClient, secs, type DnsSettings } from '../dns/lookup.js';
import { reverseName } from '../dns/reverse.js';
import { failureOf } from '../errors.js';
import { bareName } from '../../protocol/dns-name.js';

export type { RdnsTarget };

/** What the rdns check needs: the DNS settings and the mail host PTR names are compared with. */
export interface RdnsSettings extends DnsSettings {
  mailHost: string;
}

/** At most this many PTR names are forward-checked. */
const MAX_PTR = 8;

export async function runRdns(target: RdnsTarget, s: RdnsSettings, ctx: CheckContext): Promise<RdnsResult> {
  const startedAt = ctx.now();
  const t0 = performance.now();
  const base = { type: 'rdns' as const, startedAt, ip: target.ip, side: target.side };
  const client = lookupClient(s);
  let phase = 'ptr';
  // Known once the PTR lookup answered, so a failed forward lookup still reports them.
  let ptrNames: string[] = [];
  const mailHost = bareName(s.mailHost);
  try {
    const r = await client.query(reverseName(target.ip), 'PTR', { signal: ctx.signal });
    assertRcode(r, `PTR ${target.ip}`, true);
    ptrNames = [...new Set(recordsOf(r, 'PTR').map((p) => bareName(p.value)))].sort();
    phase = 'forward';
    const want = canonicalIp(target.ip);
    const qtype = isIP(target.ip) === 6 ? 'AAAA' : 'A';
    let fcrdns = false;
    const notes: string[] = [];
    for (const name of ptrNames.slice(0, MAX_PTR)) {
      const f = await client.query(name, qtype, { signal: ctx.signal });
      assertRcode(f, `${qtype} ${name}`, true);
      const addrs = recordsOf(f, qtype).map((a) => canonicalIp(a.value));
      if (addrs.includes(want)) fcrdns = true;
      else notes.push(`${name} → ${addrs.join(',') || f.rcodeName}`);
    }
    return {
      ...base,
      durationSeconds: secs(performance.now() - t0),
      ok: true,
      ptrNames: ptrNames.slice(0, 32),
      fcrdns,
      matchesMailHost: ptrNames.includes(mailHost),
      ...(ptrNames.length === 0
        ? { message: `no PTR record for ${target.ip}` }
        : !fcrdns
          ? {
              message: `no PTR name resolves back to ${target.ip}: ${notes.join('; ')}${
                ptrNames.includes(mailHost)
                  ? `; it will once ${mailHost} points at ${target.ip}`
                  : `; it will not once ${mailHost} points at ${target.ip} either`
              }`,
            }
          : {}),
    };
  } catch (e) {
    return {
      ...base,
      durationSeconds: secs(performance.now() - t0),
      ...failureOf(phase, e),
      ptrNames: ptrNames.slice(0, 32),
      fcrdns: false,
      matchesMailHost: ptrNames.includes(mailHost),
    };
  }
}

export function rdnsSettings(plan: PlanConfig): RdnsSettings {
  return { ...dnsSettings(plan), mailHost: plan.cutover.mail_host };
}

export const rdnsCheck: CheckSpec<'rdns', RdnsSettings> = {
  type: 'rdns',
  run: runRdns,
  targets(plan) {
    const s = rdnsSettings(plan);
    return plan.cutover.servers.map((sv) => ({ key: sv.ip, target: { ip: sv.ip, side: sv.side }, settings: s }));
  },
};
