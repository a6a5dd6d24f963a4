/**
 * dnsbl check: each server IP (reversed octets, IPv6 nibbles) against each list of
 * `cutover.dnsbl`. NXDOMAIN = not listed; 127.0.0.x answers = listed; answers in
 * 127.255.255.0/24 are the list refusing to answer (Spamhaus: public resolver, typo, rate
 * limit) and so errors, not listings; anything outside 127.0.0.0/8 is a resolver rewriting
 * NXDOMAIN and also an error.
 */
import type { CheckContext, CheckSpec } from '../check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { DnsblResult, DnsblTarget } from '../../protocol/checks/dnsbl.js';
import { assertRcode, recordsOf } from '../dns/client.js';
import { DnsError } from '../dns/errors.js';
import { dnsSettings, lookupClient, secs, type DnsSettings } from '../dns/lookup.js';
import { dnsblKey } from '../dns/reverse.js';
import { failureOf } from '../errors.js';
import { bareName } from '../../protocol/dns-name.js';

export type { DnsblTarget };

/** A list as results name it: lower case, no trailing dot. */

export async function runDnsbl(target: DnsblTarget, s: DnsSettings, ctx: CheckContext): Promise<DnsblResult> {
  const startedAt = ctx.now();
  const t0 = performance.now();
  const list = bareName(target.list);
  const base = { type: 'dnsbl' as const, startedAt, ip: target.ip, side: target.side, list };
  let answers: string[] = [];
  try {
    const name = `${dnsblKey(target.ip)}.${list}`;
    const r = await lookupClient(s).query(name, 'A', { signal: ctx.signal });
    assertRcode(r, `A ${name}`, true);
    answers = recordsOf(r, 'A')
      .map((a) => a.value)
      .sort()
      .slice(0, 16);
    const refused = answers.filter((a) => a.startsWith('127.255.255.'));
    if (refused.length > 0) throw new DnsError('dnsbl_refused', `${list} answered ${refused.join(', ')}`);
    const foreign = answers.filter((a) => !a.startsWith('127.'));
    if (foreign.length > 0) throw new DnsError('dnsbl_bad_answer', `${list} answered ${foreign.join(', ')}`);
    return { ...base, durationSeconds: secs(performance.now() - t0), ok: true, listed: answers.length > 0, answers };
  } catch (e) {
    return { ...base, durationSeconds: secs(performance.now() - t0), ...failureOf('query', e), listed: false, answers };
  }
}

export const dnsblCheck: CheckSpec<'dnsbl', DnsSettings> = {
  type: 'dnsbl',
  run: runDnsbl,
  targets(plan: PlanConfig) {
    const s = dnsSettings(plan);
    return plan.cutover.servers.flatMap((sv) =>
      plan.cutover.dnsbl.map((list) => ({ key: `${sv.ip}@${list}`, target: { ip: sv.ip, side: sv.side, list: bareName(list) }, settings: s })),
    );
  },
};
