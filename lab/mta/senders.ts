/**
 * The lab's real-world senders: mail servers elsewhere that deliver to the mail host the way its
 * resolver answers, each from its own network. One asks the honest resolver and moves to the new IP
 * with the switch; one asks the resolver that ignores TTLs and keeps delivering to the old IP. The
 * log follower beside the old MTA (mailprobe mta-log) sees who still delivers there.
 */
import { Resolver } from 'node:dns/promises';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';

export interface LabSender {
  /** Source address (its network is what the follower reports). */
  from: string;
  /** The resolver it asks for the mail host (`ip:port`). */
  resolver: string;
}

export interface SendersOptions {
  senders: readonly LabSender[];
  mailHost: string;
  /** Recipient at the mail domain. */
  to: string;
  /** Server IP → SMTP port (the lab MTAs listen on their own ports). */
  ports: ReadonlyMap<string, number>;
  everyMs: number;
  log?: Logger;
}

/** Starts the senders; the returned function stops them. */
export function startSenders(o: SendersOptions): () => Promise<void> {
  let stopped = false;
  const inflight = new Set<Promise<void>>();
  const one = async (s: LabSender): Promise<void> => {
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([s.resolver]);
    let ip: string | undefined;
    try {
      ip = (await r.resolve4(o.mailHost))[0];
    } catch {
      return;
    }
    const port = ip === undefined ? undefined : o.ports.get(ip);
    if (ip === undefined || port === undefined) return;
    const t = nodemailer.createTransport({ host: ip, port, localAddress: s.from, ignoreTLS: true, connectionTimeout: 2000, greetingTimeout: 2000 });
    try {
      await t.sendMail({ from: `news@${s.from.replaceAll('.', '-')}.example`, to: o.to, subject: 'lab traffic', text: 'a message from the world' });
    } catch (err) {
      o.log?.debug({ from: s.from, ip, err: (err as Error).message }, 'lab sender: not delivered');
    } finally {
      t.close();
    }
  };
  const timer = setInterval(() => {
    if (stopped) return;
    for (const s of o.senders) {
      const p = one(s).finally(() => inflight.delete(p));
      inflight.add(p);
    }
  }, o.everyMs);
  timer.unref?.();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await Promise.allSettled([...inflight]);
  };
}
