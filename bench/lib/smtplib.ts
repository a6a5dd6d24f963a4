/**
 * The probe's SMTP phase timings beside an independent client's: Python's smtplib
 * (bench/lib/smtplib_phases.py, one process for the whole run) and the probe's smtp check
 * take turns against the same server, session by session, so both see the same load. Used by the
 * postfix test (a tolerance that catches a phase off by tens of ms) and bench/phases.ts (figures).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { smtp, type SmtpSettings } from '../../probe/checks/smtp.js';
import type { SmtpPhase } from '../../protocol/results.js';
import { testCtx } from './smtp-support.js';

/** The phases both clients time in rcpt mode over STARTTLS. */
export const COMPARED_PHASES = ['connect', 'banner', 'ehlo', 'starttls', 'mail', 'rcpt', 'quit'] as const satisfies readonly SmtpPhase[];
export type ComparedPhase = (typeof COMPARED_PHASES)[number];

export interface PhaseComparison {
  /** Per phase: every session's ms, probe and smtplib. */
  probe: Record<ComparedPhase, number[]>;
  smtplib: Record<ComparedPhase, number[]>;
  /** smtplib's TLS version (e.g. TLSv1.3). */
  tls: string;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * `sessions` turns of each client against ip:port, STARTTLS required, rcpt mode. `settings`
 * must carry the CA file the server's certificate chains to and its name (mailHost).
 */
export async function comparePhases(ip: string, port: number, settings: SmtpSettings, sessions: number): Promise<PhaseComparison> {
  if (!settings.caFile) throw new Error('comparePhases: settings.caFile is needed (smtplib verifies the certificate)');
  const script = resolve(import.meta.dirname, 'smtplib_phases.py');
  const py = spawn('python3', [script, ip, String(port), settings.mailHost, settings.caFile, settings.helo, settings.from, settings.to], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  py.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
  const empty = () => Object.fromEntries(COMPARED_PHASES.map((p) => [p, [] as number[]])) as unknown as Record<ComparedPhase, number[]>;
  const out: PhaseComparison = { probe: empty(), smtplib: empty(), tls: '' };
  try {
    for (let i = 0; i < sessions; i++) {
      py.stdin.write('go\n');
      const next = await lines.next();
      if (next.done) throw new Error(`smtplib_phases.py ended: ${stderr.trim()}`);
      const j = JSON.parse(next.value) as Record<string, number | string>;
      if (typeof j.error === 'string') throw new Error(`smtplib: ${j.error}`);
      out.tls = String(j.tls);
      const r = await smtp({ ip, side: 'old', port, mode: 'rcpt' }, { ...settings, mode: 'rcpt', tls: 'required' }, testCtx());
      if (!r.ok) throw new Error(`probe smtp check failed: ${r.code} ${r.message}`);
      for (const p of COMPARED_PHASES) {
        out.probe[p].push((r.phases[p] ?? Number.NaN) * 1000);
        out.smtplib[p].push(Number(j[p]));
      }
    }
  } finally {
    py.stdin.end();
    py.kill();
  }
  return out;
}
