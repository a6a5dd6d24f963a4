/**
 * What the probe decided, readable in its own log: every result at debug (type, target, ok,
 * errorClass, code, duration), and a target's change of state at info — the first failure, a
 * failure of another class, the recovery — never one line per interval. It also keeps each
 * target's latest state, from which the health endpoint names the targets whose checks fail
 * internally.
 */
import type { Log as Logger } from './log.js';
import type { CheckResult, CheckType } from '../protocol/results.js';

/** What a result is about, stable from one interval to the next (`smtp 127.0.0.3:25`). */
export function resultTarget(r: CheckResult): string {
  switch (r.type) {
    case 'dns':
      return `${r.resolver} ${r.name} ${r.qtype}`;
    case 'ttl':
      return `${r.resolver} ${r.name}`;
    case 'rdns':
      return r.ip;
    case 'auth':
      return `${r.method} ${r.subject}${r.side ? ` ${r.side}` : ''}`;
    case 'dnsbl':
      return `${r.ip} ${r.list}`;
    case 'smtp':
      return `${r.ip}:${r.port}`;
    case 'roundtrip':
      return `via ${r.viaIp}`;
    case 'mta':
      return `log ${r.ips.map((x) => x.ip).join(',')}`;
    case 'inbox':
      return `${r.receiver} via ${r.viaIp}`;
  }
}

export interface TargetState {
  type: CheckType;
  target: string;
  ok: boolean;
  errorClass?: string | undefined;
  code?: string | undefined;
  message?: string | undefined;
  /** Failed results in a row (0 when ok). */
  failures: number;
  /** Unix ms of the result that set the state (ok → failing, failing → ok, class change). */
  since: number;
}

/** Targets whose state is kept; far above any plan's (resolvers × names × types + IPs × checks). */
const MAX_TARGETS = 20_000;

export class DecisionLog {
  readonly #log: Logger;
  readonly #targets = new Map<string, TargetState>();

  constructor(log: Logger) {
    this.#log = log;
  }

  observe(results: readonly CheckResult[]): void {
    for (const r of results) {
      const target = resultTarget(r);
      const fields = { type: r.type, target, ok: r.ok, errorClass: r.errorClass, code: r.code, duration: r.durationSeconds };
      this.#log.debug(fields, r.ok ? `${r.type} ${target}: ok` : `${r.type} ${target}: ${r.errorClass} (${r.code})`);
      const key = `${r.type}\u0000${target}`;
      const before = this.#targets.get(key);
      if (r.ok) {
        if (before && !before.ok) {
          this.#log.info(
            { ...fields, failedResults: before.failures, failingSince: new Date(before.since).toISOString() },
            `${r.type} ${target}: ok again after ${before.failures} failed result${before.failures === 1 ? '' : 's'} (${before.errorClass})`,
          );
        }
        this.#set(key, { type: r.type, target, ok: true, failures: 0, since: before?.ok ? before.since : r.startedAt });
        continue;
      }
      const changed = !before || before.ok || before.errorClass !== r.errorClass;
      if (changed) {
        const was = !before ? '' : before.ok ? ' (was ok)' : ` (was ${before.errorClass})`;
        this.#log.info({ ...fields, message: r.message }, `${r.type} ${target}: failing, ${r.errorClass} (${r.code}): ${r.message ?? ''}${was}`);
      }
      this.#set(key, {
        type: r.type,
        target,
        ok: false,
        errorClass: r.errorClass,
        code: r.code,
        message: r.message,
        failures: (before && !before.ok ? before.failures : 0) + 1,
        since: changed ? r.startedAt : (before?.since ?? r.startedAt),
      });
    }
  }

  /** Targets whose latest result is a failure of this class. */
  failing(errorClass: string): TargetState[] {
    return [...this.#targets.values()].filter((t) => !t.ok && t.errorClass === errorClass);
  }

  #set(key: string, state: TargetState): void {
    this.#targets.delete(key);
    this.#targets.set(key, state);
    // Bounded: the least recently reported target goes first.
    if (this.#targets.size > MAX_TARGETS) this.#targets.delete(this.#targets.keys().next().value as string);
  }
}
