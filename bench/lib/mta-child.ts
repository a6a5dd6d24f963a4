/**
 * The lab's old and new MTAs in their own process for bench:timing, so the server's timers and
 * the measuring client do not share an event loop. Driven over the IPC channel:
 * `{ fault }` sets the old MTA's fault, `{ delays: true }` asks for its recorded banner delays.
 */
import { startMtas, type Fault } from '../../lab/mta/index.js';

type Msg = { fault: Fault | null } | { delays: true } | { stop: true };

const mtas = await startMtas({ mailHost: 'mail.company.test', domain: 'company.test' });
process.send?.({ ready: true, old: { ip: mtas.old.ip, port: mtas.old.port }, caFile: mtas.certs.caFile });
process.on('message', (m: Msg) => {
  void (async () => {
    if ('fault' in m) {
      await mtas.setFault('old', m.fault);
      process.send?.({ ok: true });
    } else if ('delays' in m) {
      process.send?.({ delays: mtas.old.bannerDelays });
    } else {
      await mtas.close();
      process.exit(0);
    }
  })();
});
process.on('disconnect', () => void mtas.close().then(() => process.exit(0)));
