/**
 * ttl analysis: derived, incrementally, from the dns results of this probe.
 *
 * The authoritative answers (results with `authoritative: true`) over time form epochs: runs of
 * one answer set. For every authoritative observation we remember until when a resolver may
 * honestly keep that answer: the *next* authoritative observation (the latest moment the
 * record could still have been unchanged) plus the TTL observed. For the answer set before a
 * change this is `first time the new set was seen + TTL before the change` — the conservative
 * bound: the change may have happened at any time between the last old and the first new
 * observation, and we count from the latest. A resolver that returns an earlier epoch's set
 * later than that bound plus `ttl_allowance` (probe timing) violates the TTL, with the excess
 * as its stale seconds. A resolver reporting a TTL above the highest TTL the authoritative
 * servers gave for the same set (up to the next authoritative observation, since a TTL raised
 * in between is legitimate) extends it.
 *
 * Figures: safe to switch at = the first authoritative observation of a lowered TTL + the
 * highest TTL seen before it in the same epoch; safe to decommission = no dns result (resolver
 * or authoritative) contained an old-side IP for `probes.decommission_quiet`.
 */
import type { CheckContext, CheckSpec } from '../check.js';
import type { PlanConfig } from '../../config/schema.js';
import type { DnsResult } from '../../protocol/checks/dns.js';
import type { TtlResult, TtlTarget } from '../../protocol/checks/ttl.js';
import { answerKey, sideOf, type Servers } from '../dns/classify.js';
import { secs } from '../dns/lookup.js';

export type { TtlTarget };

export interface TtlSettings {
  allowanceMs: number;
  lookbackMs: number;
  decommissionQuietMs: number;
  /** Results that start this long before the last run are read again (slow queries land late). */
  overlapMs: number;
  /** The plan's server IPs: answers holding an old-side IP keep decommissioning unsafe. */
  servers: Servers;
}

interface Epoch {
  key: string;
  firstSeen: number;
  lastSeen: number;
  /** Until when a resolver may honestly return this set (see the module doc). */
  holdUntil: number;
  /** Highest TTL the authoritative servers gave for this set. */
  maxTtl: number;
}

interface ResolverState {
  /** The plan's name of the resolver, from its latest dns result. */
  name: string | undefined;
  /**
   * Observed across a TTL expiry: it answered after an earlier answer set's hold (its TTL counted
   * from the change) plus the allowance had run out, so it had the chance to serve past a TTL.
   * Until then its honouring the TTL is not known. Sticky.
   */
  tested: boolean;
  staleMs: number;
  violation: boolean;
  /** Highest extension seen (not reset at changes: it describes the resolver, not the change). */
  extension: number;
  /** The epoch index staleness and extension refer to (reset when the answer changes). */
  epoch: number;
  lastSeen: number;
}

interface TtlState {
  cursor: number;
  seen: Map<string, number>;
  epochs: Epoch[];
  /** Epochs dropped from the front (indices stay stable). */
  dropped: number;
  lastAuth: { t: number; ttl: number; epoch: number } | null;
  resolvers: Map<string, ResolverState>;
  /**
   * Resolver TTLs waiting for the next authoritative observation: the TTL served between two
   * observations may be either of theirs (a raise in between is legitimate), so a TTL is judged
   * only once the observation after it is known.
   */
  pendingTtl: { t: number; resolver: string; key: string; ttl: number }[];
  /** Highest TTL seen in the current epoch before the latest lowering, and when it was lowered. */
  epochTtlMax: number;
  lastAuthTtl: number | null;
  safeToSwitchAt: number | null;
  firstObservation: number | null;
  lastOldSeen: number | null;
}

const STATE_KEY = 'ttl';
const MAX_EPOCHS = 32;

function freshState(since: number): TtlState {
  return {
    cursor: since,
    seen: new Map(),
    epochs: [],
    dropped: 0,
    lastAuth: null,
    resolvers: new Map(),
    pendingTtl: [],
    epochTtlMax: 0,
    lastAuthTtl: null,
    safeToSwitchAt: null,
    firstObservation: null,
    lastOldSeen: null,
  };
}

const epochAt = (st: TtlState, i: number): Epoch | undefined => st.epochs[i - st.dropped];

function observeAuth(st: TtlState, r: DnsResult): void {
  const t = r.startedAt + r.durationSeconds * 1000;
  const ttl = r.ttl ?? 0;
  const key = answerKey(r.answers);
  // The previous observation's answer held at least until now: extend its hold.
  if (st.lastAuth) {
    const prev = epochAt(st, st.lastAuth.epoch);
    if (prev) prev.holdUntil = Math.max(prev.holdUntil, t + st.lastAuth.ttl * 1000);
  }
  let idx = st.dropped + st.epochs.length - 1;
  const cur = st.epochs[st.epochs.length - 1];
  if (!cur || cur.key !== key) {
    st.epochs.push({ key, firstSeen: t, lastSeen: t, holdUntil: t + ttl * 1000, maxTtl: ttl });
    idx++;
    if (st.epochs.length > MAX_EPOCHS) {
      st.epochs.shift();
      st.dropped++;
    }
    st.epochTtlMax = ttl;
    st.lastAuthTtl = ttl;
  } else {
    cur.lastSeen = Math.max(cur.lastSeen, t);
    cur.holdUntil = Math.max(cur.holdUntil, t + ttl * 1000);
    cur.maxTtl = Math.max(cur.maxTtl, ttl);
    if (st.lastAuthTtl !== null && ttl < st.lastAuthTtl) {
      // A lowered TTL, first seen now: caches that fetched before may keep the higher one.
      st.safeToSwitchAt = Math.round(t + st.epochTtlMax * 1000);
    }
    st.epochTtlMax = Math.max(st.epochTtlMax, ttl);
    st.lastAuthTtl = ttl;
  }
  st.lastAuth = { t, ttl, epoch: idx };
  judgeExtensions(st, t);
}

const MAX_PENDING = 4096;

/** Judges the TTLs resolvers reported at or before `until` against the authoritative TTLs. */
function judgeExtensions(st: TtlState, until: number): void {
  const keep: TtlState['pendingTtl'] = [];
  for (const p of st.pendingTtl) {
    if (p.t > until) {
      keep.push(p);
      continue;
    }
    const rs = st.resolvers.get(p.resolver);
    const matching = st.epochs.filter((e) => e.key === p.key);
    if (!rs || matching.length === 0) continue;
    const maxTtl = Math.max(...matching.map((e) => e.maxTtl));
    if (p.ttl > maxTtl) rs.extension = Math.max(rs.extension, p.ttl - maxTtl);
  }
  st.pendingTtl = keep.slice(-MAX_PENDING);
}

function observeResolver(st: TtlState, r: DnsResult, s: TtlSettings): void {
  const t = r.startedAt;
  const key = answerKey(r.answers);
  const lastIdx = st.dropped + st.epochs.length - 1;
  let rs = st.resolvers.get(r.resolver);
  if (!rs) {
    rs = { name: undefined, tested: false, staleMs: 0, violation: false, extension: 0, epoch: lastIdx, lastSeen: t };
    st.resolvers.set(r.resolver, rs);
  }
  if (r.resolverName !== undefined) rs.name = r.resolverName;
  rs.lastSeen = Math.max(rs.lastSeen, t);
  if (rs.epoch !== lastIdx) {
    rs.epoch = lastIdx;
    rs.staleMs = 0;
    rs.violation = false;
  }
  if (r.ttl !== null) st.pendingTtl.push({ t, resolver: r.resolver, key, ttl: r.ttl });
  if (st.epochs.length === 0) return;
  // The epoch in force when the resolver answered: the latest one first seen by then.
  let inForce = -1;
  for (let i = st.epochs.length - 1; i >= 0; i--) {
    if ((st.epochs[i]?.firstSeen ?? Infinity) <= t) {
      inForce = i;
      break;
    }
  }
  if (inForce < 0) return;
  for (let i = inForce - 1; i >= 0 && !rs.tested; i--) if (t - (st.epochs[i]?.holdUntil ?? Infinity) > s.allowanceMs) rs.tested = true;
  if (st.epochs[inForce]?.key === key) return;
  // Returned a set that is not the one in force: the latest earlier epoch with that set.
  for (let i = inForce - 1; i >= 0; i--) {
    const e = st.epochs[i];
    if (e?.key !== key) continue;
    const late = t - e.holdUntil;
    if (late > s.allowanceMs) {
      rs.violation = true;
      rs.staleMs = Math.max(rs.staleMs, late);
    }
    return;
  }
}

export async function runTtl(target: TtlTarget, s: TtlSettings, ctx: CheckContext): Promise<TtlResult[]> {
  const started = ctx.now();
  const t0 = performance.now();
  let st = ctx.state.get(STATE_KEY) as TtlState | undefined;
  if (!st) {
    st = freshState(started - s.lookbackMs);
    ctx.state.set(STATE_KEY, st);
  }
  const batch = ctx.history
    .since('dns', st.cursor)
    .filter((r) => r.name.toLowerCase() === target.name.toLowerCase() && r.qtype === target.qtype)
    .slice()
    .sort((a, b) => a.startedAt - b.startedAt || Number(b.authoritative) - Number(a.authoritative));
  for (const r of batch) {
    const id = `${r.resolver}\u0000${r.startedAt}`;
    if (st.seen.has(id)) continue;
    st.seen.set(id, r.startedAt);
    if (!r.ok) continue;
    st.firstObservation ??= r.startedAt;
    if (r.answers.some((a) => sideOf(s.servers, a) === 'old')) st.lastOldSeen = Math.max(st.lastOldSeen ?? 0, r.startedAt);
    if (r.authoritative) observeAuth(st, r);
    else observeResolver(st, r, s);
  }
  st.cursor = Math.max(st.cursor, started - s.overlapMs);
  for (const [id, at] of st.seen) if (at < st.cursor) st.seen.delete(id);

  const quietSince = st.lastOldSeen ?? st.firstObservation;
  const safeToDecommission = quietSince !== null && started - quietSince >= s.decommissionQuietMs;
  const out: TtlResult[] = [];
  for (const [resolver, rs] of [...st.resolvers].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (started - rs.lastSeen > s.lookbackMs) {
      st.resolvers.delete(resolver);
      continue;
    }
    out.push({
      type: 'ttl',
      startedAt: started,
      durationSeconds: secs(performance.now() - t0),
      ok: true,
      resolver,
      ...(rs.name === undefined ? {} : { resolverName: rs.name }),
      name: target.name,
      staleSeconds: Math.round(rs.staleMs) / 1000,
      violation: rs.violation,
      tested: rs.tested || rs.violation,
      extensionSeconds: rs.extension,
      safeToSwitchAt: st.safeToSwitchAt,
      safeToDecommission,
    });
  }
  return out;
}

export function ttlSettings(plan: PlanConfig): TtlSettings {
  return {
    allowanceMs: plan.probes.dns.ttl_allowance,
    lookbackMs: plan.probes.dns.ttl_lookback,
    decommissionQuietMs: plan.probes.decommission_quiet,
    overlapMs: plan.probes.timeout + 1000,
    servers: plan.cutover.servers,
  };
}

export const ttlCheck: CheckSpec<'ttl', TtlSettings> = {
  type: 'ttl',
  run: runTtl,
  reads: ['dns'],
  targets(plan) {
    const v4 = plan.cutover.servers.some((sv) => !sv.ip.includes(':'));
    return [
      {
        key: plan.cutover.mail_host,
        target: { name: plan.cutover.mail_host, qtype: v4 ? 'A' : 'AAAA', resolvers: plan.probes.resolvers.map((r) => r.label) },
        settings: ttlSettings(plan),
      },
    ];
  },
};
