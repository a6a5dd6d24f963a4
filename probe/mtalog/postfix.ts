/**
 * The Postfix log grammar: syslog lines (`Nov 30 10:31:35 host postfix/smtpd[123]: …`, or the
 * RFC 3339 stamp of `maillog_file` and rsyslog) and bare messages (`journalctl -o cat`).
 *
 * - a session: smtpd's `connect from name[ip]` (postscreen's `CONNECT from [ip]:port to
 *   [server]:port` names the server address, remembered for the smtpd session that follows);
 * - an accepted message: smtpd's `QUEUEID: client=name[ip]` joined with qmgr's first
 *   `QUEUEID: from=<…>, size=…, nrcpt=… (queue active)`: the message was received and queued
 *   (one taken only up to RCPT and then reset never reaches qmgr; a deferred one re-entering the
 *   active queue is not counted twice).
 *
 * The service is the syslog_name before the daemon (`postfix-old/smtpd` → `postfix-old`), which
 * a follower maps to a server IP when one Postfix instance per IP shares a log.
 */
import { BoundedMap, bare, OTHER, UNKNOWN, type LineParser, type MtaEvent } from './event.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// stamp, host, program (syslog_name/daemon), message
const SYSLOG =
  /^(?:([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)) (\S+) ([^\s[:]+)(?:\[\d+\])?: (.*)$/;
const CONNECT = /^connect from [^\s[]*\[([^\]]+)\](?::\d+)?$/;
const CLIENT = /^([0-9A-Za-z]{5,}): client=[^\s[]*\[([^\]]+)\]/;
const QUEUED = /^([0-9A-Za-z]{5,}): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)$/;
const POSTSCREEN = /^CONNECT from \[([^\]]+)\]:\d+ to \[([^\]]+)\]:\d+$/;
/** Messages of Postfix daemons that carry nothing to count (for bare lines, which name no program). */
const KNOWN_BARE =
  /^(?:[0-9A-Za-z]{5,}: |NOQUEUE: |disconnect from |lost connection |timeout after |too many errors |improper command pipelining |(?:warning|error|fatal|panic|statistics): |(?:Anonymous|Untrusted|Trusted|Verified) TLS connection |SSL_accept |daemon started|terminating on signal|reload |PASS (?:NEW|OLD) |DISCONNECT |PREGREET |HANGUP |DNSBL rank |COMMAND |NOQUEUE |connect to |Connection )/;

export class PostfixParser implements LineParser {
  readonly format = 'postfix';
  /** queue id → the client that handed the message over, until qmgr takes it. */
  readonly #pending = new BoundedMap<string, { client: string; service: string | undefined; serverIp: string | undefined }>(50_000);
  /** client address → the server address postscreen saw it connect to. */
  readonly #postscreen = new BoundedMap<string, string>(10_000);
  readonly #year: () => number;

  constructor(opts: { now?: () => number } = {}) {
    const now = opts.now ?? Date.now;
    this.#year = () => new Date(now()).getUTCFullYear();
  }

  parse(line: string): MtaEvent {
    const m = SYSLOG.exec(line);
    if (m) {
      const program = m[4] ?? '';
      const slash = program.lastIndexOf('/');
      // Another program's line in a shared mail log (dovecot, opendkim…): of the grammar, nothing to count.
      if (slash < 0 || !program.startsWith('postfix')) return OTHER;
      const service = program.slice(0, slash);
      const daemon = program.slice(slash + 1);
      const at = m[1] ? this.#bsdTime(m[1]) : Date.parse(m[2] ?? '');
      return this.#message(m[5] ?? '', daemon, service, Number.isFinite(at) ? at : undefined);
    }
    // journalctl -o cat: the message alone.
    const ev = this.#message(line, undefined, undefined, undefined);
    if (ev.kind !== 'other') return ev;
    return KNOWN_BARE.test(line) ? OTHER : UNKNOWN;
  }

  #message(msg: string, daemon: string | undefined, service: string | undefined, at: number | undefined): MtaEvent {
    const svc = service === undefined ? {} : { service };
    if (daemon === undefined || daemon === 'smtpd') {
      const c = CONNECT.exec(msg);
      if (c) {
        const client = bare(c[1] ?? '');
        const serverIp = this.#postscreen.take(client);
        return { kind: 'session', at, client, ...svc, ...(serverIp ? { serverIp } : {}) };
      }
      const q = CLIENT.exec(msg);
      if (q) {
        const client = bare(q[2] ?? '');
        this.#pending.set(q[1] ?? '', { client, service, serverIp: undefined });
        return OTHER;
      }
    }
    if (daemon === undefined || daemon === 'qmgr') {
      const q = QUEUED.exec(msg);
      if (q) {
        const p = this.#pending.take(q[1] ?? '');
        if (!p) return OTHER;
        return { kind: 'message', at, client: p.client, ...(p.service === undefined ? {} : { service: p.service }) };
      }
    }
    if (daemon === undefined || daemon === 'postscreen') {
      const ps = POSTSCREEN.exec(msg);
      if (ps) this.#postscreen.set(bare(ps[1] ?? ''), bare(ps[2] ?? ''));
    }
    return OTHER;
  }

  /** `Nov 30 10:31:35` (no year, local time of the host that wrote it): this year, or last year for a December line read in January. */
  #bsdTime(s: string): number | undefined {
    const mon = MONTHS.indexOf(s.slice(0, 3));
    const [h, mi, se] = s.slice(7).split(':').map(Number);
    const day = Number(s.slice(4, 6));
    const now = new Date();
    let year = this.#year();
    if (mon > now.getMonth() + 1) year--;
    const t = new Date(year, mon, day, h, mi, se).getTime();
    return Number.isFinite(t) ? t : undefined;
  }
}
