/**
 * Raw-socket clients for the slow-drip and oversized-request drills: they say exactly what a
 * broken or hostile client says, which an HTTP client library would not.
 */
import { connect, type Socket } from 'node:net';

export interface DripClient {
  socket: Socket;
  /** Resolves when the server closed the connection: the status line it sent, if any. */
  closed: Promise<{ status: number | null; at: number }>;
  isOpen(): boolean;
  stop(): void;
}

/** First status code in an HTTP/1.1 answer text. */
function statusOf(text: string): number | null {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return m?.[1] ? Number(m[1]) : null;
}

/**
 * Connects, sends `head` (after the server's greeting line with `afterGreeting`), then
 * `drip()`'s next few bytes every `everyMs`, forever (until the server gives up on it).
 */
export function dripClient(port: number, head: string, drip: () => string, everyMs: number, opts: { afterGreeting?: boolean } = {}): Promise<DripClient> {
  return new Promise((ready, fail) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let open = true;
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d) => {
      answer += d.toString('latin1');
    });
    const closed = new Promise<{ status: number | null; at: number }>((done) => {
      socket.once('close', () => {
        open = false;
        clearInterval(timer);
        done({ status: statusOf(answer), at: performance.now() });
      });
    });
    // A reset from the server is one way of being cut off; 'close' follows.
    socket.on('error', () => undefined);
    const start = () => {
      socket.write(head, () => {
        timer = setInterval(() => {
          if (open) socket.write(drip());
        }, everyMs);
        ready({ socket, closed, isOpen: () => open, stop: () => socket.destroy() });
      });
    };
    if (opts.afterGreeting) {
      // SMTP: a client that talks before the greeting is dropped as an early talker.
      const onData = () => {
        if (!/^\d{3} /m.test(answer)) return;
        socket.off('data', onData);
        start();
      };
      socket.on('data', onData);
    } else {
      socket.once('connect', start);
    }
    socket.once('error', (err) => {
      if (!timer) fail(err);
    });
  });
}

/**
 * Sends `head` and then `chunk` as fast as the server reads it, until the server answers or
 * closes, or `maxBytes` went out. Returns the status it answered and the body bytes sent.
 */
export function floodClient(port: number, head: string, chunk: Buffer, maxBytes: number): Promise<{ status: number | null; sent: number; answered: boolean }> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      socket.destroy();
      done({ status: statusOf(answer), sent, answered: answer.length > 0 });
    };
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      // The status line and headers are enough.
      if (answer.includes('\r\n\r\n')) finish();
    });
    socket.on('error', () => undefined);
    socket.once('close', finish);
    const pump = () => {
      while (!finished && sent < maxBytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.once('connect', () => {
      socket.write(head);
      pump();
    });
  });
}

/** Sends one complete raw request and returns the answer's status. */
export function rawRequest(port: number, text: string | Buffer): Promise<number | null> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => done(statusOf(answer)));
    socket.once('connect', () => socket.write(text));
  });
}
