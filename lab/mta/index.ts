/**
 * The lab's mail servers (README, quick start): an old and a new MTA (smtp-server) on their own loopback
 * addresses (127.0.0.2 and 127.0.0.3 by default, ports picked at start), with a certificate for
 * the mail host from the lab CA. They accept mail for the lab domain (never relaying anything
 * else) and relay round-trip mail to the sink from their own address, optionally DKIM-signed, so
 * the sink sees which server delivered it. Faults are set at run time with `setFault()`.
 *
 * Note: smtp-server greets 100 ms after accepting (its guard against clients that talk before
 * the greeting), so the lab's banner phase is ~100 ms without faults; `slow-banner` sets when the
 * greeting goes out, counted from the accept.
 */
import { appendFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext, type SecureContext } from 'node:tls';
import nodemailer from 'nodemailer';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { startBlackhole, type Blackhole } from './blackhole.js';
import { makeLabCerts, type LabCerts } from './certs.js';

export type Side = 'old' | 'new';
export type FaultStage = 'connect' | 'mail' | 'rcpt' | 'data';

/** A fault of one MTA; `null` clears it. */
export type Fault =
  /** TCP connections are refused (the listener is closed). */
  | { kind: 'refuse' }
  /** TCP connects hang (a listener that never accepts takes the port). */
  | { kind: 'blackhole' }
  /** The greeting goes out `ms` after the TCP accept. */
  | { kind: 'slow-banner'; ms: number }
  /**
   * A 4xx (greylisting) at a stage; default 451 4.7.1. With `every` (at rcpt): only every n-th
   * RCPT of the same sender and recipient fails, the first one first (flapping, as greylisting
   * that forgets its triplets does).
   */
  | { kind: 'temp-fail'; at: FaultStage; code?: number; message?: string; every?: number }
  /** A 5xx at a stage; default 550 5.7.1 (554 at connect). */
  | { kind: 'perm-fail'; at: FaultStage; code?: number; message?: string }
  /** The message is read, then the connection dropped without a reply. */
  | { kind: 'drop-after-data' }
  /** The server never answers at a stage (the client's command timeout fires). */
  | { kind: 'stall'; at: Exclude<FaultStage, 'connect'> }
  /** The certificate is for the wrong name (still from the lab CA). */
  | { kind: 'bad-cert' }
  /** The TLS handshake fails. */
  | { kind: 'broken-tls' }
  /** STARTTLS is not offered. */
  | { kind: 'no-starttls' }
  /** Non-SMTP bytes instead of a greeting, then close. */
  | { kind: 'garbage' }
  /** Mail is accepted; round-trip mail reaches the sink only `ms` later (a slow relay). */
  | { kind: 'relay-delay'; ms: number }
  /** Mail is accepted, round-trip mail is never relayed (a lost message). */
  | { kind: 'relay-drop' }
  /** The certificate is valid for the mail host but expires soon (needs `certs.expiring`). */
  | { kind: 'expiring-cert' }
  /** Each command of a phase is answered `ms[phase]` late (both EHLOs around STARTTLS; STARTTLS's 220). */
  | { kind: 'slow-phases'; ms: Partial<Record<DelayPhase, number>> };

/** The phases whose replies `slow-phases` delays, by the command that starts them. */
export type DelayPhase = 'ehlo' | 'starttls' | 'mail' | 'rcpt' | 'data' | 'quit';
const COMMAND_PHASE: Record<string, DelayPhase> = { EHLO: 'ehlo', HELO: 'ehlo', STARTTLS: 'starttls', MAIL: 'mail', RCPT: 'rcpt', DATA: 'data', QUIT: 'quit' };

/** What the lab needs of smtp-server's per-connection object (not in its types). */
interface ServerConnection {
  session: SMTPServerSession;
  _onCommand(command: Buffer, callback: () => void): void;
}

export interface DkimKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

export interface StartMtasOptions {
  /** The name the certificates are for. */
  mailHost: string;
  /** Recipients at this domain are accepted; everything else is refused (no open relay). */
  domain: string;
  /** Addresses to listen on. Default old 127.0.0.2, new 127.0.0.3. */
  addresses?: Partial<Record<Side, string>>;
  /** Greeting / EHLO / relay HELO names. Default: the mail host for both. */
  names?: Partial<Record<Side, string>>;
  /** Certificates; default: made with openssl into a temp dir (removed on close). */
  certs?: LabCerts;
  /** Where round-trip mail is relayed (can also be set later with setSink). */
  sink?: { host: string; port: number };
  /** Recipients relayed to the sink (the round-trip address); case-insensitive. */
  relay?: readonly string[];
  /** Domains whose mail is relayed to another MX (the lab receivers in front of Dovecot), with a Received header of our own. */
  routes?: readonly MailRoute[];
  /** DKIM keys used when relaying, per side. */
  dkim?: Partial<Record<Side, DkimKey>>;
  /** AUTH credentials the MTAs accept (AUTH is offered after STARTTLS). */
  auth?: { user: string; pass: string };
  /** Also listen with implicit TLS (a 465-style port). */
  implicitTls?: boolean;
  /** Largest message accepted. Default 1 MiB. */
  maxSize?: number;
  /**
   * A mail log per side, written as Postfix writes its maillog (`connect from`, `client=`, qmgr's
   * `queue active`), for the log follower (`mailprobe mta-log`) the lab runs beside the MTA.
   */
  logFiles?: Partial<Record<Side, string>>;
}

/** Mail for `domain` goes to the MX at host:port. */
export interface MailRoute {
  domain: string;
  host: string;
  port: number;
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: Buffer;
  remoteAddress: string;
  helo: string;
}

export interface RelayOutcome {
  to: string[];
  ok: boolean;
  response: string;
}

export interface LabMta {
  side: Side;
  ip: string;
  port: number;
  /** Implicit-TLS port (with `implicitTls`). */
  tlsPort?: number;
  name: string;
  /** Messages accepted, oldest first (the last 500). */
  received: ReceivedMail[];
  /** Relays to the sink, in order. */
  relayed: RelayOutcome[];
  /** Commands a `stall` fault has left unanswered. */
  stalls: number;
  /** With `slow-banner`: ms from the TCP accept to the greeting actually written, per connection. */
  bannerDelays: number[];
}

export interface LabMtas {
  old: LabMta;
  new: LabMta;
  certs: LabCerts;
  setFault(side: Side, fault: Fault | null): Promise<void>;
  setSink(sink: { host: string; port: number } | undefined): void;
  /** Replaces the routes to other MXs. */
  setRoutes(routes: readonly MailRoute[]): void;
  /** Resolves when every relay started so far has finished. */
  relaysSettled(): Promise<void>;
  /** Client connections open right now. */
  connections(side: Side): number;
  close(): Promise<void>;
}

const DEFAULT_ADDR: Record<Side, string> = { old: '127.0.0.2', new: '127.0.0.3' };
/** Received and relayed messages kept per MTA. */
const KEEP = 500;

class SmtpReplyError extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

function stageError(f: Extract<Fault, { kind: 'temp-fail' | 'perm-fail' }>): SmtpReplyError {
  const temp = f.kind === 'temp-fail';
  const code = f.code ?? (temp ? (f.at === 'connect' ? 421 : 451) : f.at === 'connect' ? 554 : 550);
  return new SmtpReplyError(code, f.message ?? (temp ? '4.7.1 Greylisted, please try again later' : '5.7.1 Rejected by lab fault'));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** Appends Postfix-style maillog lines (`Nov 30 10:37:57 host postfix/smtpd[pid]: …`) to a file. */
function mailLog(file: string | undefined, host: string): ((daemon: string, msg: string) => void) | undefined {
  if (!file) return undefined;
  const short = host.split('.')[0] ?? host;
  return (daemon, msg) => {
    const d = new Date();
    const stamp = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    try {
      appendFileSync(file, `${stamp} ${short} postfix/${daemon}[${process.pid}]: ${msg}\n`);
    } catch {
      // A lab log that cannot be written only costs the follower its figures.
    }
  };
}

let queueIds = 0x1000;
const queueId = () => (queueIds++).toString(16).toUpperCase().padStart(10, '0');

const sockKey = (addr: string | undefined, port: number | undefined) => `${addr ?? ''}:${port ?? 0}`;

interface Instance {
  mta: LabMta;
  server: SMTPServer;
  tlsServer?: SMTPServer;
  fault: Fault | null;
  /** RCPTs per sender and recipient since the fault was set (temp-fail `every`). */
  seen: Map<string, number>;
  sockets: Map<string, { socket: Socket; acceptedAt: number }>;
  blackhole?: Blackhole;
}

export async function startMtas(opts: StartMtasOptions): Promise<LabMtas> {
  const ownCerts = !opts.certs;
  const certs = opts.certs ?? (await makeLabCerts({ mailHost: opts.mailHost }));
  const good: SecureContext = createSecureContext({ key: certs.mailHost.key, cert: certs.mailHost.cert });
  const wrong: SecureContext = createSecureContext({ key: certs.wrongName.key, cert: certs.wrongName.cert });
  const expiring: SecureContext = certs.expiring ? createSecureContext({ key: certs.expiring.key, cert: certs.expiring.cert }) : good;
  const contextFor = (f: Fault | null): SecureContext => (f?.kind === 'bad-cert' ? wrong : f?.kind === 'expiring-cert' ? expiring : good);
  // Only TLS 1.0/1.1, which clients refuse: the handshake fails. The protocol range comes from
  // the context a TLS socket starts with, so the fault swaps the server's default context.
  const broken: SecureContext = createSecureContext({ key: certs.mailHost.key, cert: certs.mailHost.cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
  let sink = opts.sink;
  let routes = new Map((opts.routes ?? []).map((r) => [r.domain.toLowerCase(), r]));
  const routeOf = (rcpt: string): MailRoute | undefined => routes.get(rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase());
  const relaySet = new Set((opts.relay ?? []).map((a) => a.toLowerCase()));
  const inflight = new Set<Promise<void>>();
  const delayed = new Set<NodeJS.Timeout>();
  const domain = opts.domain.toLowerCase();

  const instances = {} as Record<Side, Instance>;

  const makeServer = (inst: () => Instance, side: Side, secure: boolean): SMTPServer => {
    const name = opts.names?.[side] ?? opts.mailHost;
    const writeLog = mailLog(opts.logFiles?.[side], `${side}.${opts.domain}`);
    const server = new SMTPServer({
      secure,
      name,
      key: certs.mailHost.key,
      cert: certs.mailHost.cert,
      SNICallback: (_servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
        const f = inst().fault;
        if (f?.kind === 'broken-tls') return cb(null, broken);
        cb(null, contextFor(f));
      },
      logger: false,
      closeTimeout: 1000,
      disableReverseLookup: true,
      size: opts.maxSize ?? 1024 * 1024,
      authOptional: true,
      authMethods: ['PLAIN', 'LOGIN'],
      ...(opts.auth ? {} : { disabledCommands: ['AUTH'] }),
      onAuth(auth, _session, cb) {
        if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
        cb(new SmtpReplyError(535, '5.7.8 Authentication credentials invalid'));
      },
      onConnect(session: SMTPServerSession, cb) {
        const i = inst();
        writeLog?.('smtpd', `connect from unknown[${session.remoteAddress}]`);
        delayCommands(i, server, session);
        const f = i.fault;
        if (f?.kind === 'slow-banner') {
          const acc = i.sockets.get(sockKey(session.remoteAddress, session.remotePort))?.acceptedAt ?? performance.now();
          setTimeout(
            () => {
              // smtp-server writes the greeting synchronously in this callback.
              i.mta.bannerDelays.push(performance.now() - acc);
              if (i.mta.bannerDelays.length > KEEP) i.mta.bannerDelays.shift();
              cb();
            },
            Math.max(0, acc + f.ms - performance.now()),
          );
          return;
        }
        if ((f?.kind === 'temp-fail' || f?.kind === 'perm-fail') && f.at === 'connect') return cb(stageError(f));
        // Not advertised and not accepted either (hideSTARTTLS alone still takes the command).
        if (f?.kind === 'no-starttls') session.disabledCommands = opts.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'];
        cb();
      },
      onMailFrom(_addr, _session, cb) {
        const f = inst().fault;
        if ((f?.kind === 'temp-fail' || f?.kind === 'perm-fail') && f.at === 'mail') return cb(stageError(f));
        if (f?.kind === 'stall' && f.at === 'mail') return void inst().mta.stalls++;
        cb();
      },
      onRcptTo(addr, session, cb) {
        const i = inst();
        const f = i.fault;
        if (f?.kind === 'temp-fail' && f.at === 'rcpt' && f.every !== undefined) {
          const pair = `${session.envelope.mailFrom ? session.envelope.mailFrom.address : ''} ${addr.address}`.toLowerCase();
          const n = i.seen.get(pair) ?? 0;
          i.seen.set(pair, n + 1);
          if (n % f.every === 0) return cb(stageError(f));
        } else if ((f?.kind === 'temp-fail' || f?.kind === 'perm-fail') && f.at === 'rcpt') return cb(stageError(f));
        if (f?.kind === 'stall' && f.at === 'rcpt') return void inst().mta.stalls++;
        const rcpt = addr.address.toLowerCase();
        if (!rcpt.endsWith(`@${domain}`) && !relaySet.has(rcpt) && !routeOf(rcpt)) return cb(new SmtpReplyError(550, '5.7.1 Relaying denied'));
        cb();
      },
      onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const i = inst();
          const f = i.fault;
          if (f?.kind === 'drop-after-data') {
            i.sockets.get(sockKey(session.remoteAddress, session.remotePort))?.socket.destroy();
            return;
          }
          if (f?.kind === 'stall' && f.at === 'data') return void i.mta.stalls++;
          if ((f?.kind === 'temp-fail' || f?.kind === 'perm-fail') && f.at === 'data') return cb(stageError(f));
          if (stream.sizeExceeded) return cb(new SmtpReplyError(552, '5.3.4 Message too big'));
          const raw = Buffer.concat(chunks);
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const to = session.envelope.rcptTo.map((r) => r.address);
          i.mta.received.push({ from, to, raw, remoteAddress: session.remoteAddress, helo: session.hostNameAppearsAs });
          // Bounded: the demo lab runs for hours.
          if (i.mta.received.length > KEEP) i.mta.received.splice(0, i.mta.received.length - KEEP);
          const relayTo = to.filter((t) => relaySet.has(t.toLowerCase()));
          // Routed mail carries our Received header, as a real MTA's does.
          const stamped = Buffer.concat([
            Buffer.from(
              `Received: from ${session.hostNameAppearsAs} (${session.hostNameAppearsAs} [${session.remoteAddress}])\r\n\tby ${i.mta.name} with ESMTP; ${new Date().toUTCString().replace('GMT', '+0000')}\r\n`,
            ),
            raw,
          ]);
          const hops: { to: string[]; target: { host: string; port: number } | undefined; raw: Buffer }[] = [];
          if (relayTo.length > 0) hops.push({ to: relayTo, target: undefined, raw });
          for (const r of new Set(to.map(routeOf).filter((r): r is MailRoute => r !== undefined))) {
            hops.push({ to: to.filter((t) => routeOf(t) === r), target: r, raw: stamped });
          }
          for (const h of hops) {
            if (f?.kind === 'relay-delay') {
              const timer = setTimeout(() => {
                delayed.delete(timer);
                relay(i, from, h.to, h.raw, h.target);
              }, f.ms);
              delayed.add(timer);
            } else if (f?.kind === 'relay-drop') i.mta.relayed.push({ to: h.to, ok: false, response: 'dropped by lab fault' });
            else relay(i, from, h.to, h.raw, h.target);
          }
          if (writeLog) {
            const id = queueId();
            writeLog('smtpd', `${id}: client=unknown[${session.remoteAddress}]`);
            writeLog('qmgr', `${id}: from=<${from}>, size=${raw.length}, nrcpt=${to.length} (queue active)`);
          }
          cb(null, 'Ok: queued');
        });
      },
    });
    server.on('error', () => {});
    server.server.on('connection', (socket: Socket) => {
      const i = inst();
      const key = sockKey(socket.remoteAddress, socket.remotePort);
      // smtp-server removes every listener of the raw socket at STARTTLS, so closed sockets
      // are pruned here rather than on their 'close' event.
      for (const [k, v] of i.sockets) if (v.socket.destroyed) i.sockets.delete(k);
      i.sockets.set(key, { socket, acceptedAt: performance.now() });
      if (i.fault?.kind === 'garbage') {
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      }
    });
    return server;
  };

  /**
   * Wraps the connection's command dispatch: while a `slow-phases` fault is set, a command is
   * handled (and so answered) its phase's delay after it arrived. smtp-server reads the next
   * command only after the previous one is handled, so pipelined commands keep their order.
   */
  const delayCommands = (i: Instance, server: SMTPServer, session: SMTPServerSession): void => {
    const conns = (server as unknown as { connections: Set<ServerConnection> }).connections;
    const conn = [...conns].find((c) => c.session === session);
    if (!conn || typeof conn._onCommand !== 'function')
      throw new Error('smtp-server internals changed: no connection with _onCommand() for the session (lab/mta slow-phases)');
    const handle = conn._onCommand;
    conn._onCommand = (command, callback) => {
      const f = i.fault;
      const phase = COMMAND_PHASE[(/^[A-Za-z]+/.exec(command.toString('latin1'))?.[0] ?? '').toUpperCase()];
      const ms = f?.kind === 'slow-phases' && phase ? (f.ms[phase] ?? 0) : 0;
      if (ms <= 0) return handle.call(conn, command, callback);
      const timer = setTimeout(() => {
        delayed.delete(timer);
        handle.call(conn, command, callback);
      }, ms);
      delayed.add(timer);
    };
  };

  const relay = (i: Instance, from: string, to: string[], raw: Buffer, route?: { host: string; port: number }): void => {
    const target = route ?? sink;
    if (!target) {
      i.mta.relayed.push({ to, ok: false, response: 'no sink configured' });
      return;
    }
    const dkim = opts.dkim?.[i.mta.side];
    const transport = nodemailer.createTransport({
      host: target.host,
      port: target.port,
      secure: false,
      localAddress: i.mta.ip,
      name: i.mta.name,
      tls: { rejectUnauthorized: false },
      logger: false,
      ...(dkim ? { dkim } : {}),
    });
    const p = transport
      .sendMail({ envelope: { from, to }, raw })
      .then(
        (info: { response: string }) => void i.mta.relayed.push({ to, ok: true, response: info.response }),
        (e: Error & { response?: string }) => void i.mta.relayed.push({ to, ok: false, response: e.response ?? e.message }),
      )
      .finally(() => {
        if (i.mta.relayed.length > KEEP) i.mta.relayed.splice(0, i.mta.relayed.length - KEEP);
        transport.close();
        inflight.delete(p);
      });
    inflight.add(p);
  };

  const listen = (server: SMTPServer, host: string, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      server.server.once('error', onErr);
      server.server.listen(port, host, () => {
        server.server.off('error', onErr);
        const a = server.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  const stopListening = (server: SMTPServer): Promise<void> => new Promise((resolve) => server.server.close(() => resolve()));

  for (const side of ['old', 'new'] as const) {
    const ip = opts.addresses?.[side] ?? DEFAULT_ADDR[side];
    const name = opts.names?.[side] ?? opts.mailHost;
    const mta: LabMta = { side, ip, port: 0, name, received: [], relayed: [], stalls: 0, bannerDelays: [] };
    const inst: Instance = { mta, server: undefined as unknown as SMTPServer, fault: null, seen: new Map(), sockets: new Map() };
    instances[side] = inst;
    inst.server = makeServer(() => inst, side, false);
    mta.port = await listen(inst.server, ip, 0);
    if (opts.implicitTls) {
      inst.tlsServer = makeServer(() => inst, side, true);
      mta.tlsPort = await listen(inst.tlsServer, ip, 0);
    }
  }

  const setFault = async (side: Side, fault: Fault | null): Promise<void> => {
    const i = instances[side];
    const before = i.fault;
    i.seen.clear();
    // Undo what the previous fault changed at the listener.
    if (before?.kind === 'blackhole') {
      await i.blackhole?.close();
      delete i.blackhole;
    }
    if ((before?.kind === 'refuse' || before?.kind === 'blackhole') && fault?.kind !== 'refuse' && fault?.kind !== 'blackhole') {
      await listen(i.server, i.mta.ip, i.mta.port);
      if (i.tlsServer && i.mta.tlsPort) await listen(i.tlsServer, i.mta.ip, i.mta.tlsPort);
    }
    if ((fault?.kind === 'refuse' || fault?.kind === 'blackhole') && before?.kind !== 'refuse' && before?.kind !== 'blackhole') {
      await stopListening(i.server);
      if (i.tlsServer) await stopListening(i.tlsServer);
    }
    if (fault?.kind === 'blackhole') i.blackhole = await startBlackhole(i.mta.ip, i.mta.port);
    // Clients without SNI get the default context, so it follows the certificate faults too.
    for (const srv of [i.server, i.tlsServer]) srv?.secureContext.set('*', fault?.kind === 'broken-tls' ? broken : contextFor(fault));
    i.fault = fault;
  };

  return {
    old: instances.old.mta,
    new: instances.new.mta,
    certs,
    setFault,
    setSink(s) {
      sink = s;
    },
    setRoutes(r) {
      routes = new Map(r.map((x) => [x.domain.toLowerCase(), x]));
    },
    connections: (side) => [...instances[side].sockets.values()].filter((v) => !v.socket.destroyed).length,
    async relaysSettled() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
    async close() {
      for (const t of delayed) clearTimeout(t);
      delayed.clear();
      await Promise.allSettled([...inflight]);
      for (const side of ['old', 'new'] as const) {
        const i = instances[side];
        await i.blackhole?.close();
        for (const { socket } of i.sockets.values()) socket.destroy();
        for (const srv of [i.server, i.tlsServer]) {
          if (!srv) continue;
          await new Promise<void>((resolve) => srv.close(() => resolve()));
        }
      }
      if (ownCerts) await certs.cleanup();
    },
  };
}
