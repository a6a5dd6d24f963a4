/**
 * One timed SMTP session to one destination IP, driven by nodemailer's SMTP connection
 * (`nodemailer/lib/smtp-connection`): it does the socket, the reply parsing (multi-line
 * replies), STARTTLS and AUTH; this module only times it.
 *
 * How the timing hooks in (nodemailer 10, read from its source): every command goes out through
 * `_sendCommand()`, every complete reply is handed to the next queued action by
 * `_processResponse()` (synchronously from the socket's data handler for the first reply of a
 * chunk), the TCP socket is made in `_connectToHost()` and `_onConnect()` runs when the
 * connection is ready for the greeting (after the handshake with implicit TLS). The session wraps
 * those four methods on its own instance; a phase is the time from sending a command to its
 * complete reply, on `performance.now()`. `assertInternals()` fails loudly (a bug, not a result)
 * if a nodemailer upgrade renames them.
 *
 * Phases: connect (TCP), banner (ready → greeting), ehlo (both EHLOs around STARTTLS summed),
 * starttls (STARTTLS command + handshake; with implicit TLS the handshake), auth, mail, rcpt,
 * data (DATA command → reply to the final dot), quit (RSET of rcpt mode + QUIT).
 * rcpt mode sends MAIL and RCPT one at a time through nodemailer's command queue; data mode uses
 * its send(), which pipelines MAIL, RCPT and DATA when the server offers PIPELINING — then each
 * is timed from when the server could start on it, as the server experienced them: its send time
 * or the reply to the command before it, whichever is later (RCPT is not charged for MAIL's wait).
 *
 * After STARTTLS on TLS 1.3 the EHLO waits for the server's session tickets (see
 * _upgradeConnection): written together with our Finished it would meet Nagle on the server and
 * our delayed ACK and read ~40 ms slow against Postfix, where Python's smtplib reads 0.3 ms.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type SMTPConnectionClass from 'nodemailer/lib/smtp-connection';
import type { SmtpPhase } from '../../protocol/results.js';
import { CheckFailure } from '../errors.js';
import type { SmtpErrorCode } from './errors.js';
import { tlsInfo, type TlsInfo } from './tls.js';
// nodemailer's CommonJS build: its ESM build imports node:http, whose namespace loads modules a
// probe never uses (docs/architecture.md).
const SMTPConnection = process.getBuiltinModule('node:module').createRequire(import.meta.url)('nodemailer/lib/smtp-connection') as typeof SMTPConnectionClass;

export type { TlsInfo };

export type TlsMode = 'opportunistic' | 'required' | 'implicit' | 'none';

export interface SessionOptions {
  ip: string;
  port: number;
  /** TLS server name (SNI) and the name the certificate must verify for: the mail host. */
  servername: string;
  tls: TlsMode;
  /** Name sent in EHLO. */
  helo: string;
  /** Extra trusted CAs (PEM). */
  ca?: string | Buffer | undefined;
  connectTimeoutMs: number;
  bannerTimeoutMs: number;
  /** Longest wait for any one reply after the greeting. */
  commandTimeoutMs: number;
  /** Source address of the connection. */
  localAddress?: string | undefined;
  signal?: AbortSignal | undefined;
}

export class SessionError extends CheckFailure {
  declare readonly code: SmtpErrorCode;
  declare readonly phase: SmtpPhase;
  constructor(
    code: SmtpErrorCode,
    phase: SmtpPhase,
    detail: string,
    /** The server reply that caused it, if any. */
    readonly reply?: string,
  ) {
    super(code, detail, phase);
    this.name = 'SessionError';
  }
}

/** What nodemailer keeps private but the timing hooks need (see the module comment). */
interface Internals {
  _socket: Socket | TLSSocket | false | null;
  secure: boolean;
  _responseQueue: unknown[];
  _responseActions: ((str: string) => void)[];
  _sendCommand(str: string, logStr?: string): void;
  _processResponse(): unknown;
  _connectToHost(opts: unknown, secure: boolean): void;
  _onConnect(): void;
  _upgradeConnection(callback: (err: Error | null, secured?: boolean) => void): void;
}

function assertInternals(x: unknown): asserts x is Internals {
  const o = x as Record<string, unknown>;
  for (const m of ['_sendCommand', '_processResponse', '_connectToHost', '_onConnect', '_upgradeConnection']) {
    if (typeof o[m] !== 'function') throw new Error(`nodemailer SMTPConnection has no ${m}(): the timing hooks of probe/smtp/session.ts need updating`);
  }
  if (!Array.isArray(o._responseActions) || !Array.isArray(o._responseQueue)) throw new Error('nodemailer SMTPConnection internals changed (response queues)');
}

interface Pending {
  phase: SmtpPhase;
  sentAt: number;
  verb: string;
  /** The phase began here (DATA's final reply: at the start of DATA, not at its 354). */
  from?: number;
}

/** `250 2.1.0 Ok` → 2.1.0 (from the last line of a multi-line reply). */
export function enhancedCode(reply: string | undefined): string | undefined {
  if (!reply) return undefined;
  const last = reply.slice(reply.lastIndexOf('\n') + 1);
  return /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?=\s|$)/.exec(last)?.[1];
}

export function replyCode(reply: string | undefined): number | undefined {
  const m = reply ? /^([1-5]\d\d)(?:[ -]|$)/.exec(reply) : null;
  return m ? Number(m[1]) : undefined;
}

/** The host name a greeting or EHLO reply starts with (`220 mail.x ESMTP` → mail.x). */
export function replyHost(reply: string | undefined): string | undefined {
  const m = reply ? /^\d{3}[ -]([^\s]+)/.exec(reply) : null;
  return m?.[1]?.slice(0, 256);
}

/**
 * TLS contexts by trusted-CA set, made once: building one (parsing the CAs, the root store) takes
 * milliseconds that would otherwise land in the starttls phase of every session.
 */
const contexts = new Map<string, SecureContext>();
export function secureContextFor(ca: string | Buffer | undefined): SecureContext {
  const key = ca === undefined ? '' : typeof ca === 'string' ? ca : ca.toString('latin1');
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = createSecureContext(ca === undefined ? {} : { ca });
    contexts.set(key, ctx);
  }
  return ctx;
}

/** Shortest wait for TLS 1.3 session tickets before the EHLO after STARTTLS (see _upgradeConnection). */
export const TICKET_WAIT_MIN_MS = 20;

const VERB_PHASE: Record<string, SmtpPhase> = {
  EHLO: 'ehlo',
  HELO: 'ehlo',
  LHLO: 'ehlo',
  STARTTLS: 'starttls',
  MAIL: 'mail',
  RCPT: 'rcpt',
  DATA: 'data',
  RSET: 'quit',
  QUIT: 'quit',
  AUTH: 'auth',
};

interface NodemailerError extends Error {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  timeoutType?: string;
  command?: string;
}

export class TimedSession {
  /** Phase durations in milliseconds. */
  readonly phases: Partial<Record<SmtpPhase, number>> = {};
  banner: string | undefined;
  ehlo: string | undefined;
  tls: TlsInfo | undefined;
  /** The last complete reply (the deciding one for a failure). */
  lastReply: string | undefined;
  /** The phase the session is in (where a failure happens). */
  phase: SmtpPhase = 'connect';
  readonly startedAt = performance.now();

  readonly #conn: SMTPConnectionClass;
  readonly #inner: Internals;
  readonly #pending: Pending[] = [];
  #connectAt: number | undefined;
  #tcpAt: number | undefined;
  /** When the last reply after the greeting was complete. */
  #lastReplyAt: number | undefined;
  #readyAt: number | undefined;
  #tlsStartAt: number | undefined;
  /** STARTTLS → 220, a round trip to the server (bounds the wait for TLS 1.3 session tickets). */
  #starttlsReplyMs: number | undefined;
  #plainSocket: Socket | TLSSocket | undefined;
  #authing = false;
  #failure: SessionError | undefined;
  #reject: ((e: SessionError) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = () =>
    this.#fail(new SessionError('smtp_aborted', this.phase, String((this.#opts.signal?.reason as Error | undefined)?.message ?? 'aborted')));

  readonly #opts: SessionOptions;

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    // Node's own name check (a full peer chain turned into objects) is skipped: tlsInfo() verifies
    // the name after the handshake, outside the starttls phase.
    const tlsOpts = { servername: opts.servername, rejectUnauthorized: false, secureContext: secureContextFor(opts.ca), checkServerIdentity: () => undefined };
    const setup = opts.connectTimeoutMs + opts.bannerTimeoutMs + opts.commandTimeoutMs;
    this.#conn = new SMTPConnection({
      host: opts.ip,
      port: opts.port,
      servername: opts.servername,
      secure: opts.tls === 'implicit',
      requireTLS: opts.tls === 'required',
      opportunisticTLS: opts.tls === 'opportunistic',
      ignoreTLS: opts.tls === 'none',
      name: opts.helo,
      tls: tlsOpts,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      // Our own timers (connect, banner) decide; nodemailer's are a backstop.
      connectionTimeout: setup,
      greetingTimeout: setup,
      socketTimeout: opts.commandTimeoutMs,
      socketCloseTimeout: 1000,
      logger: false,
      allowInternalNetworkInterfaces: true,
    });
    assertInternals(this.#conn);
    this.#inner = this.#conn;
    this.#hook();
    this.#conn.on('error', (err: NodemailerError) => this.#fail(this.#classify(err)));
    opts.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #hook(): void {
    const inner = this.#inner;
    const conn = this.#conn;
    const origSend = inner._sendCommand;
    const origProcess = inner._processResponse;
    const origConnect = inner._connectToHost;
    const origReady = inner._onConnect;
    const origUpgrade = inner._upgradeConnection;
    inner._sendCommand = (str: string, logStr?: string) => {
      const now = performance.now();
      const verb = (/^[A-Za-z]+/.exec(str)?.[0] ?? '').toUpperCase();
      const phase: SmtpPhase = this.#authing ? 'auth' : (VERB_PHASE[verb] ?? this.phase);
      this.#pending.push({ phase, sentAt: now, verb });
      this.phase = phase;
      origSend.call(conn, str, logStr);
    };
    inner._processResponse = () => {
      const head = inner._responseQueue[0];
      if (head !== undefined) {
        const raw = String(head);
        // The same tests nodemailer applies before it consumes a reply.
        if (raw.trim() && !/^\d+-/.test(raw.slice(raw.lastIndexOf('\n') + 1))) this.#onReply(performance.now(), Buffer.from(raw, 'binary').toString('utf8'));
      }
      return origProcess.call(conn);
    };
    inner._connectToHost = (o: unknown, secure: boolean) => {
      // connect is the TCP handshake: from the socket being made, after nodemailer's set-up.
      this.#connectAt = performance.now();
      origConnect.call(conn, o, secure);
      const sock = inner._socket;
      if (sock) sock.once('connect', () => this.#onTcp());
    };
    inner._upgradeConnection = (callback) => {
      let tickets = 0;
      let onTicket: (() => void) | undefined;
      origUpgrade.call(conn, (err, secured) => {
        if (err || !secured) return callback(err, secured);
        // The handshake is done (our Finished is written): STARTTLS ends here, as for any client.
        if (this.#tlsStartAt !== undefined) this.#add('starttls', performance.now() - this.#tlsStartAt);
        this.#tlsStartAt = undefined;
        this.#captureTls();
        const sock = inner._socket;
        if (tickets > 0 || !sock || !('getProtocol' in sock) || sock.getProtocol() !== 'TLSv1.3') return callback(null, secured);
        // TLS 1.3: the server sends its session tickets after our Finished. An EHLO written in
        // the same segment as the Finished leaves the tickets unacknowledged while the server
        // answers; a server with Nagle on (Postfix) then holds the EHLO reply until our delayed
        // ACK, ~40 ms later, which the ehlo phase would blame on the server. So the EHLO waits
        // for the tickets (or a few STARTTLS round trips when none come) and, written after
        // them, acknowledges them. The wait belongs to no phase.
        let timer: NodeJS.Timeout | undefined;
        const go = (): void => {
          onTicket = undefined;
          clearTimeout(timer);
          // Tickets of the same segment are read in this tick; the EHLO goes after them.
          setImmediate(() => {
            if (!this.#failure) callback(null, secured);
          });
        };
        onTicket = go;
        timer = setTimeout(go, Math.min(this.#opts.commandTimeoutMs, Math.max(TICKET_WAIT_MIN_MS, 4 * (this.#starttlsReplyMs ?? 0))));
      });
      const sock = inner._socket;
      if (sock && sock !== this.#plainSocket && 'getProtocol' in sock) {
        sock.on('session', () => {
          tickets++;
          onTicket?.();
        });
      }
    };
    inner._onConnect = () => {
      if (this.#tcpAt === undefined) this.#onTcp();
      this.#readyAt = performance.now();
      if (this.#opts.tls === 'implicit' && this.#tcpAt !== undefined) {
        this.#add('starttls', this.#readyAt - this.#tcpAt);
        this.#captureTls();
      }
      this.phase = 'banner';
      origReady.call(conn);
    };
  }

  #onTcp(): void {
    if (this.#tcpAt !== undefined) return;
    this.#tcpAt = performance.now();
    this.#add('connect', this.#tcpAt - (this.#connectAt ?? this.startedAt));
    this.phase = this.#opts.tls === 'implicit' ? 'starttls' : 'banner';
    this.#arm(this.#opts.bannerTimeoutMs, () =>
      this.#readyAt === undefined && this.#opts.tls === 'implicit'
        ? new SessionError('smtp_tls_failed', 'starttls', `no TLS handshake within ${this.#opts.bannerTimeoutMs} ms`)
        : new SessionError('smtp_banner_timeout', 'banner', `no greeting within ${this.#opts.bannerTimeoutMs} ms`),
    );
  }

  #onReply(at: number, reply: string): void {
    this.lastReply = reply;
    if (this.banner === undefined) {
      this.banner = reply;
      this.#disarm();
      this.#add('banner', at - (this.#readyAt ?? this.#tcpAt ?? this.startedAt));
      return;
    }
    const p = this.#pending.shift();
    if (!p) return;
    // A pipelined command waits at the server for the replies before it.
    const from = p.from ?? Math.max(p.sentAt, this.#lastReplyAt ?? p.sentAt);
    this.#lastReplyAt = at;
    const code = replyCode(reply) ?? 0;
    if (p.verb === 'DATA' && code >= 300 && code < 400) {
      // 354: the phase ends with the reply to the final dot.
      this.#pending.unshift({ ...p, verb: 'DATA-END', from });
      return;
    }
    if (p.verb === 'STARTTLS' && code >= 200 && code < 300) {
      this.#tlsStartAt = p.sentAt;
      this.#starttlsReplyMs = at - p.sentAt;
      this.#plainSocket = this.#inner._socket || undefined;
      return;
    }
    if (p.phase === 'ehlo' && code >= 200 && code < 300) this.ehlo = reply;
    this.#add(p.phase, at - from);
  }

  #add(phase: SmtpPhase, ms: number): void {
    this.phases[phase] = (this.phases[phase] ?? 0) + Math.max(0, ms);
  }

  #captureTls(): void {
    const sock = this.#inner._socket;
    if (sock && 'getPeerCertificate' in sock) this.tls = tlsInfo(sock, this.#opts.servername);
  }

  #arm(ms: number, make: () => SessionError): void {
    this.#disarm();
    this.#timer = setTimeout(() => this.#fail(make()), ms);
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Ends the session with an error: rejects the step in flight and drops the connection. */
  #fail(e: SessionError): void {
    if (this.#failure) return;
    this.#failure = e;
    this.#disarm();
    const reject = this.#reject;
    this.#reject = undefined;
    this.destroy();
    reject?.(e);
  }

  #step<T>(run: (done: (err: NodemailerError | null | undefined, v?: T) => void) => void): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      run((err, v) => {
        if (this.#reject !== reject) return;
        this.#reject = undefined;
        if (err) {
          const e = this.#classify(err);
          this.#failure ??= e;
          reject(e);
        } else resolve(v as T);
      });
    });
  }

  /** Connect, greeting, EHLO, STARTTLS (per mode) and EHLO again. */
  open(): Promise<void> {
    if (this.#opts.signal?.aborted) this.#onAbort();
    if (this.#failure) return Promise.reject(this.#failure);
    this.#arm(
      this.#opts.connectTimeoutMs,
      () =>
        new SessionError(
          'smtp_connect_timeout',
          'connect',
          `no TCP connection to ${this.#opts.ip}:${this.#opts.port} within ${this.#opts.connectTimeoutMs} ms`,
        ),
    );
    return this.#step<void>((done) => this.#conn.connect((err) => done(err)));
  }

  login(user: string, pass: string): Promise<void> {
    this.phase = 'auth';
    this.#authing = true;
    return this.#step<boolean | undefined>((done) => this.#conn.login({ user, pass }, (err, ok) => done(err, ok))).then(
      () => {
        this.#authing = false;
      },
      (e: unknown) => {
        this.#authing = false;
        throw e;
      },
    );
  }

  /** One command through nodemailer's command/reply queue; resolves with the reply text. */
  #command(line: string): Promise<string> {
    return this.#step<string>((done) => {
      this.#inner._responseActions.push((reply) => done(null, reply));
      this.#inner._sendCommand(line);
    });
  }

  #expect2xx(reply: string, phase: SmtpPhase): void {
    const code = replyCode(reply);
    if (code !== undefined && code >= 200 && code < 300) return;
    const e = this.#replyError(phase, reply);
    this.#failure ??= e;
    throw e;
  }

  #replyError(phase: SmtpPhase, reply: string): SessionError {
    const code = replyCode(reply);
    if (code !== undefined && code >= 400 && code < 500) return new SessionError('smtp_temp_fail', phase, reply.slice(0, 500), reply);
    if (code !== undefined && code >= 500) return new SessionError('smtp_perm_fail', phase, reply.slice(0, 500), reply);
    return new SessionError('smtp_protocol', phase, `unexpected reply ${JSON.stringify(reply.slice(0, 200))}`, reply);
  }

  /** MAIL FROM and RCPT TO without DATA (rcpt mode); the caller then resets and quits. */
  async envelope(from: string, to: string): Promise<string> {
    this.#expect2xx(await this.#command(`MAIL FROM:<${from}>`), 'mail');
    const rcpt = await this.#command(`RCPT TO:<${to}>`);
    this.#expect2xx(rcpt, 'rcpt');
    return rcpt;
  }

  async reset(): Promise<void> {
    this.#expect2xx(await this.#command('RSET'), 'quit');
  }

  /** A whole message (data mode, round trip): nodemailer's send() does MAIL, RCPT, DATA. */
  send(from: string, to: string, message: string | Buffer): Promise<string> {
    return this.#step<{ response: string }>((done) => this.#conn.send({ from, to: [to] }, message, (err, info) => done(err, info))).then(
      (info) => info.response,
    );
  }

  /** QUIT and wait for the server's reply (or the close); never fails. */
  async quit(): Promise<void> {
    // After a refused command the connection is still good for a polite QUIT (timed too).
    if (this.#conn.destroyed || (this.#failure && this.#failure.reply === undefined)) return this.destroy();
    this.phase = 'quit';
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.destroy();
        resolve();
      }, this.#opts.commandTimeoutMs);
      this.#conn.once('end', () => {
        clearTimeout(t);
        resolve();
      });
      this.#conn.quit();
    });
    this.destroy();
  }

  /** Drops the connection now. */
  destroy(): void {
    this.#disarm();
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    const sock = this.#inner._socket;
    this.#conn.close();
    if (sock && !sock.destroyed) sock.destroy();
  }

  /** A nodemailer error → catalogue code, in the phase the session was in. */
  #classify(err: NodemailerError): SessionError {
    if (err instanceof SessionError) return err;
    const msg = err.message ?? String(err);
    const reply = err.response ?? undefined;
    const phase = this.phase;
    if (this.#tcpAt === undefined) {
      if (err.originalCode === 'ECONNREFUSED' || /ECONNREFUSED/.test(msg)) return new SessionError('smtp_connect_refused', 'connect', msg);
      if (err.timeoutType === 'CONNECT_TIMEOUT') return new SessionError('smtp_connect_timeout', 'connect', msg);
      return new SessionError('smtp_connect_failed', 'connect', msg);
    }
    if (err.code === 'EAUTH') return new SessionError('smtp_auth_failed', 'auth', msg, reply);
    if (err.code === 'ETIMEDOUT') {
      if (err.timeoutType === 'GREETING_TIMEOUT') return new SessionError('smtp_banner_timeout', 'banner', msg);
      if (err.timeoutType === 'UPGRADE_TIMEOUT') return new SessionError('smtp_tls_failed', 'starttls', msg);
      return new SessionError('smtp_timeout', phase, msg);
    }
    if (err.code === 'ETLS' || phase === 'starttls') {
      // A refused STARTTLS is a TLS problem whatever its code (454 is the usual one).
      if (reply && !/[ -]STARTTLS\b/im.test(this.ehlo ?? '')) return new SessionError('smtp_tls_unavailable', 'starttls', msg, reply);
      return new SessionError('smtp_tls_failed', 'starttls', msg, reply);
    }
    if (phase === 'banner') {
      if (reply && /^[45]/.test(reply)) return this.#replyError('banner', reply);
      if (err.code === 'ECONNECTION') return new SessionError('smtp_closed', 'banner', msg);
      return new SessionError('smtp_banner_invalid', 'banner', msg, reply);
    }
    const code = reply ? replyCode(reply) : undefined;
    if (reply && code !== undefined && code >= 400) {
      const where = err.command === 'MAIL FROM' ? 'mail' : err.command === 'RCPT TO' ? 'rcpt' : err.command === 'DATA' ? 'data' : phase;
      return this.#replyError(where, reply);
    }
    if (err.code === 'ECONNECTION' || err.code === 'ESOCKET') return new SessionError('smtp_closed', phase, msg, reply);
    return new SessionError('smtp_protocol', phase, msg, reply);
  }
}
