/**
 * `npm run bench:phases`: the smtp check's phase timings against an independent client, Python's
 * smtplib (bench/lib/smtplib_phases.py), both against a real Postfix with STARTTLS (TLS 1.3)
 * on loopback, taking turns session by session (bench/lib/smtplib.ts). Prints per phase the
 * median and the minimum of each and their difference. Needs root (Postfix's master).
 *
 * Env: BENCH_SESSIONS (per client, default 40).
 */
import { cpus, loadavg } from 'node:os';
import { makeLabCerts } from '../lab/mta/certs.js';
import { startPostfix } from './lib/postfix.js';
import { COMPARED_PHASES, comparePhases, median } from './lib/smtplib.js';
import { table } from './lib/load.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 40);
const MAIL_HOST = 'mail.company.test';
const IP = '127.0.0.5';

const certs = await makeLabCerts({ mailHost: MAIL_HOST });
const pf = await startPostfix({
  ip: IP,
  hostname: 'mx-postfix.company.test',
  relayDomains: ['company.test'],
  transport: { 'company.test': 'discard:' },
  tls: certs.mailHost,
});
try {
  console.log(
    `# bench:phases: ${SESSIONS} sessions each, probe (Node ${process.version}) and Python smtplib, against Postfix on ${IP} (STARTTLS); ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}`,
  );
  const settings = {
    mailHost: MAIL_HOST,
    mode: 'rcpt' as const,
    tls: 'required' as const,
    from: 'mailprobe@company.test',
    to: 'postmaster@company.test',
    helo: 'probe.probes.test',
    caFile: certs.caFile,
    connectTimeoutMs: 5000,
    bannerTimeoutMs: 5000,
    commandTimeoutMs: 5000,
  };
  // One session each to warm up (first TLS context, Postfix's first smtpd).
  await comparePhases(IP, pf.port, settings, 1);
  const c = await comparePhases(IP, pf.port, settings, SESSIONS);
  const f = (x: number) => x.toFixed(2);
  console.log(
    table(
      ['phase', 'probe median', 'smtplib median', 'diff', 'probe min', 'smtplib min', 'diff'],
      COMPARED_PHASES.map((p) => {
        const [a, b] = [c.probe[p], c.smtplib[p]];
        return [p, f(median(a)), f(median(b)), f(median(a) - median(b)), f(Math.min(...a)), f(Math.min(...b)), f(Math.min(...a) - Math.min(...b))];
      }),
    ),
  );
  console.log('(ms)');
  console.log(`# TLS ${c.tls}; load at the end ${loadavg()[0]!.toFixed(1)}`);
} finally {
  await pf.stop();
  await certs.cleanup();
}
