/**
 * Shared plumbing of the DNS-side checks: the settings they take from the plan, the client they
 * look up through, and the RCODE of a thrown error.
 */
import type { PlanConfig } from '../../config/schema.js';
import { createClient, type DnsClient } from './client.js';
import { DnsError } from './errors.js';
import type { ResolverSpec } from './resolvers.js';

/** Settings of the DNS-side checks, derived from `plan.probes.dns` (tests override fields). */
export interface DnsSettings {
  /** Record types the dns check asks for. */
  types: readonly ('A' | 'AAAA' | 'MX')[];
  /** Timeout of one transport attempt, ms. */
  queryTimeoutMs: number;
  ednsPayload: number;
  /** The resolver rdns/auth/dnsbl and NS discovery use. */
  lookupResolver: ResolverSpec;
}

export function dnsSettings(plan: PlanConfig): DnsSettings {
  const d = plan.probes.dns;
  return {
    types: d.types,
    queryTimeoutMs: d.query_timeout,
    ednsPayload: d.edns_payload,
    lookupResolver: d.lookup_resolver ?? plan.probes.resolvers[0] ?? { kind: 'system', label: 'system' },
  };
}

export function clientFor(spec: ResolverSpec, s: DnsSettings): DnsClient {
  return createClient(spec, { timeoutMs: s.queryTimeoutMs, ednsPayload: s.ednsPayload });
}

export function lookupClient(s: DnsSettings): DnsClient {
  return clientFor(s.lookupResolver, s);
}

/** The RCODE name a thrown error stands for, or '-'. */
export function rcodeOf(e: unknown): string {
  return e instanceof DnsError ? e.rcode : '-';
}

/** Milliseconds → seconds, rounded to microseconds. */
export const secs = (ms: number): number => Math.max(0, Math.round(ms * 1000) / 1e6);
