/**
 * A dns2 UDP + TCP server pair on one loopback address and one port (port 0 → chosen at run
 * time, read back), which closes cleanly: open TCP connections are destroyed on close rather
 * than waiting out dns2's 10 s idle timeout.
 */
import { Socket } from 'node:net';
import dns2 from 'dns2';

const { Packet, UDPServer, TCPServer } = dns2;
export type Packet = InstanceType<typeof Packet>;
export { Packet };

export interface DnsRequestInfo {
  transport: 'udp' | 'tcp';
  /** The client's address. */
  address: string;
}

/** Answers one request: a packet, raw bytes (garbage on purpose), or null to stay silent. */
export type DnsHandlerFn = (req: Packet, info: DnsRequestInfo) => Promise<Packet | Buffer | null> | Packet | Buffer | null;

export interface LabDnsServer {
  host: string;
  port: number;
  /** `host:port` (brackets for IPv6), as a resolver spec. */
  address: string;
  close(): Promise<void>;
}

export async function serveDns(handler: DnsHandlerFn, host = '127.0.0.1', onError?: (e: Error) => void): Promise<LabDnsServer> {
  const type = host.includes(':') ? 'udp6' : 'udp4';
  for (let attempt = 0; ; attempt++) {
    const udp = new UDPServer({ type });
    const tcp = new TCPServer();
    const conns = new Set<Socket>();
    tcp.on('connection', (s: Socket) => {
      conns.add(s);
      s.on('close', () => conns.delete(s));
    });
    const wire = (server: InstanceType<typeof UDPServer> | InstanceType<typeof TCPServer>) =>
      server.on('request', (req: Packet, send: (r: Packet | Buffer) => Promise<Buffer>, client: unknown) => {
        const info: DnsRequestInfo =
          client instanceof Socket
            ? { transport: 'tcp', address: client.remoteAddress ?? '' }
            : { transport: 'udp', address: (client as { address: string }).address };
        Promise.resolve()
          .then(() => handler(req, info))
          .then((res) => (res === null ? undefined : send(res)))
          .catch((e: unknown) => onError?.(e as Error));
      });
    wire(udp);
    wire(tcp);
    udp.on('requestError', (e: Error) => onError?.(e));
    tcp.on('requestError', (e: Error) => onError?.(e));
    udp.on('error', (e: Error) => onError?.(e));
    await udp.listen(0, host);
    const port = (udp.address() as { port: number }).port;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      udp.close();
      // The TCP side of a UDP port picked by the kernel may be taken: pick again.
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
      throw e;
    }
    return {
      host,
      port,
      address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of conns) s.destroy();
          udp.close();
          tcp.close(() => resolve());
        }),
    };
  }
}

/** A response skeleton for a request (id, question, RD copied). */
export function responseFor(req: Packet): Packet {
  return Packet.createResponseFromRequest(req);
}
