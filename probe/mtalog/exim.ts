/**
 * The Exim main log grammar (the Exim specification, chapter "Log files"): each line starts with
 * the date and time (`2026-11-30 10:31:35`, with `.mmm` under `+millisec` and a `+0100` offset
 * under `log_timezone`), then `[pid]` under `+pid`; a message's lines then carry its id
 * (`1tGsxE-000Abc-1X`, or 4.97's longer `1tGsxE-00000000AbC-0Xyz`).
 *
 * - a session: `SMTP connection from [ip]:port I=[server]:port (TCP/IP connection count = N)`,
 *   written with `log_selector = +smtp_connection` (`I=` with `+incoming_interface`);
 * - an accepted message: the arrival line `<= sender H=name (helo) [ip]:port I=[server]:port
 *   P=esmtp…`; arrivals without `H=` (local submissions, `P=local`) are not inbound SMTP.
 *
 * A syslog prefix (`Nov 30 10:31:35 host exim[123]: `, Exim's `log_file_path = syslog`) is read
 * past. Every other line of the grammar (deliveries `=>`, `Completed`, rejections) counts nothing.
 */
import { bare, OTHER, UNKNOWN, type LineParser, type MtaEvent } from './event.js';

const SYSLOG_PREFIX = /^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ exim\d*(?:\[\d+\])?: /;
const STAMP = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d{3})?(?: ([+-]\d{4}))?(?: \[\d+(?::\d+)?\])? (.*)$/;
const CONNECTION = /^SMTP connection from (?:\S+ )?(?:\([^)]*\) )?\[([^\]]+)\](?::\d+)?(?: I=\[([^\]]+)\](?::\d+)?)? \(TCP\/IP connection count = \d+\)/;
const MESSAGE_ID = /^[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} /;
const HOST = / H=(?:\S+ )?(?:\([^)]*\) )?\[([^\]]+)\](?::\d+)?/;
const IFACE = / I=\[([^\]]+)\](?::\d+)?/;

export class EximParser implements LineParser {
  readonly format = 'exim';

  parse(line: string): MtaEvent {
    const pre = SYSLOG_PREFIX.exec(line);
    const m = STAMP.exec(pre ? line.slice(pre[0].length) : line);
    if (!m) return UNKNOWN;
    const at = Date.parse(`${m[1]}T${m[2]}${m[3] ?? ''}${m[4] ? `${m[4].slice(0, 3)}:${m[4].slice(3)}` : ''}`);
    const when = Number.isFinite(at) ? at : undefined;
    const body = m[5] ?? '';
    const c = CONNECTION.exec(body);
    if (c) return { kind: 'session', at: when, client: bare(c[1] ?? ''), ...(c[2] ? { serverIp: bare(c[2]) } : {}) };
    const id = MESSAGE_ID.exec(body);
    if (id && body.startsWith('<= ', id[0].length)) {
      const h = HOST.exec(body);
      if (!h) return OTHER;
      const i = IFACE.exec(body);
      return { kind: 'message', at: when, client: bare(h[1] ?? ''), ...(i ? { serverIp: bare(i[1] ?? '') } : {}) };
    }
    return OTHER;
  }
}
