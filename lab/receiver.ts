/**
 * The lab's stand-in for a real receiver's MX (Gmail, Microsoft, Yahoo): an SMTP server on
 * loopback that takes mail for its domains, judges each message as a receiver does — SPF, DKIM,
 * DMARC and ARC by mailauth against the lab's DNS, written into `Received-SPF` and
 * `Authentication-Results` headers under its own name, plus its own `Received` header naming
 * the delivering IP — and hands it over LMTP to a mailbox server (the lab's Dovecot).
 *
 * Its spam filter is a policy set at run time: per delivering IP, mail goes to the inbox, is
 * marked spam (`X-Spam-Flag: YES`, which Dovecot's Sieve files into Junk), into another folder,
 * or is dropped (never delivered: lost).
 */
import { randomBytes } from 'node:crypto';
import { authenticate, type DNSResolver } from 'mailauth';
import nodemailer from 'nodemailer';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Resolver } from '../probe/sink/index.js';

export type LabPlacement = 'inbox' | 'spam' | 'other' | 'drop';

export interface LabReceiverOptions {
  /** The receiver's MX name (authserv-id and the `by` of its Received header). */
  name: string;
  /** Domains it takes mail for. */
  domains: string[];
  /** Where it hands mail over (Dovecot's LMTP listener). */
  lmtp: { host: string; port: number };
  /** DNS lookups for SPF/DKIM/DMARC (the lab's authoritative server). */
  resolver: Resolver;
  host?: string;
}

export interface LabReceiver {
  host: string;
  port: number;
  name: string;
  /** Where mail from a delivering IP goes; IPs not set go to the inbox. */
  setPlacement(ip: string, placement: LabPlacement | null): void;
  /** Deliveries so far: delivering IP, recipients, placement and the LMTP answer. */
  delivered: { ip: string; to: string[]; placement: LabPlacement; ok: boolean; response: string }[];
  close(): Promise<void>;
}

const KEEP = 500;

export async function startReceiver(opts: LabReceiverOptions): Promise<LabReceiver> {
  const domains = new Set(opts.domains.map((d) => d.toLowerCase()));
  const policy = new Map<string, LabPlacement>();
  const delivered: LabReceiver['delivered'] = [];
  const inflight = new Set<Promise<unknown>>();
  const lmtp = nodemailer.createTransport({ host: opts.lmtp.host, port: opts.lmtp.port, lmtp: true, ignoreTLS: true, logger: false } as never);

  const server = new SMTPServer({
    name: opts.name,
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: 1024 * 1024,
    onRcptTo(addr, _s, cb) {
      const domain = addr.address.slice(addr.address.lastIndexOf('@') + 1).toLowerCase();
      if (!domains.has(domain)) return cb(Object.assign(new Error('5.7.1 Relaying denied'), { responseCode: 550 }));
      cb();
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const ip = session.remoteAddress;
        const helo = session.hostNameAppearsAs;
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const to = session.envelope.rcptTo.map((r) => r.address);
        const placement = policy.get(ip) ?? 'inbox';
        const p = (async () => {
          const auth = await authenticate(raw, { ip, helo, sender: from, mta: opts.name, resolver: opts.resolver as DNSResolver, disableBimi: true });
          const id = randomBytes(6).toString('hex');
          const date = new Date().toUTCString().replace('GMT', '+0000');
          const added = [
            `Received: from ${helo} (${helo} [${ip}])\r\n\tby ${opts.name} with ESMTP id ${id}\r\n\tfor <${to[0] ?? ''}>; ${date}\r\n`,
            auth.headers,
            placement === 'spam' ? 'X-Spam-Flag: YES\r\n' : '',
            placement === 'other' ? 'X-Lab-Folder: Other\r\n' : '',
          ].join('');
          if (placement === 'drop') return { ok: true, response: 'dropped by the lab receiver' };
          const info = (await lmtp.sendMail({ envelope: { from, to }, raw: Buffer.concat([Buffer.from(added), raw]) })) as { response: string };
          return { ok: true, response: info.response };
        })()
          .catch((e: Error & { response?: string }) => ({ ok: false, response: e.response ?? e.message }))
          .then((r) => {
            delivered.push({ ip, to, placement, ...r });
            if (delivered.length > KEEP) delivered.splice(0, delivered.length - KEEP);
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
        cb(null, 'Ok: queued');
      });
    },
  });
  server.on('error', () => {});
  const host = opts.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, host, () => {
      const a = server.server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
  return {
    host,
    port,
    name: opts.name,
    delivered,
    setPlacement(ip, placement) {
      if (placement === null) policy.delete(ip);
      else policy.set(ip, placement);
    },
    async close() {
      await Promise.allSettled([...inflight]);
      lmtp.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
