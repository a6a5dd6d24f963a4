/**
 * Plans for tests: the lab's world by default (127.0.0.2 old, 127.0.0.3 new), with a token per
 * probe id (`token-<id>`).
 */
import { hashToken } from '../../collector/plugins/auth.js';
import { validatePlan } from '../../config/load.js';
import type { PlanConfig } from '../../config/schema.js';

export const PROBE_IDS = ['p-eu', 'p-us', 'p-ap'] as const;
export const tokenFor = (id: string): string => `token-${id}`;

type Section = Record<string, unknown>;

/** A validated plan; each section is shallow-merged over the lab defaults. */
export function testPlan(over: { cutover?: Section; probes?: Section; collector?: Section } = {}): PlanConfig {
  const now = Date.now();
  return validatePlan(
    {
      cutover: {
        domain: 'company.test',
        mail_host: 'mail.company.test',
        servers: [
          { ip: '127.0.0.2', side: 'old', name: 'provider-a' },
          { ip: '127.0.0.3', side: 'new', name: 'provider-b' },
        ],
        window: { start: new Date(now - 3_600_000).toISOString(), end: new Date(now + 3_600_000).toISOString() },
        dkim_selectors: ['s2026'],
        dnsbl: [],
        ...over.cutover,
      },
      probes: { interval: '60s', window_interval: '15s', timeout: '5s', ...over.probes },
      collector: {
        listen: '127.0.0.1:0',
        tokens: Object.fromEntries(PROBE_IDS.map((id) => [id, hashToken(tokenFor(id))])),
        ...over.collector,
      },
    },
    'test plan',
  );
}
