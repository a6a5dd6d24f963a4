/**
 * `npm run bench:mta-log`: how fast does `mailprobe mta-log` read a mail log? A Postfix maillog of
 * BENCH_SESSIONS sessions (default 40 000; ~8 lines each: connect, client=, cleanup, qmgr from=,
 * delivery, removed, disconnect, and a rejected session now and then) from 2 000 client networks
 * is written once, then read by mta-log's own line reader, parser and tally (bench/lib/mtalog-parse.ts)
 * and by the peer in the same run, Debian's pflogsumm (Perl), on the same file, each pinned to core 0
 * (taskset; BENCH_PIN=0 off), BENCH_RUNS times each (default 3, the median reported). Figures:
 * lines/s and CPU per 100k lines (mta-log: its read loop and its whole process with Node's start;
 * pflogsumm: its whole process), and whether both counted the same messages.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requirePeers, which } from '../scripts/peers.mjs';

requirePeers(['pflogsumm']);

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 40_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PIN = process.env.BENCH_PIN !== '0' && which('taskset') !== null;
const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'mailprobe-bench-mtalog-'));

/** A deterministic Postfix maillog (syslog stamps, one host, smtpd/cleanup/qmgr/local). */
function writeLog(file: string): number {
  const out: string[] = [];
  let rnd = 12345;
  const r = (n: number) => {
    rnd = (rnd * 1103515245 + 12345) % 2 ** 31;
    return rnd % n;
  };
  const start = Date.UTC(2026, 10, 30, 0, 0, 0);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number) => String(n).padStart(2, '0');
  for (let i = 0; i < SESSIONS; i++) {
    const d = new Date(start + i * 500);
    const stamp = `${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
    const pid = 1000 + (i % 500);
    const ip = `${10 + r(200)}.${r(10)}.${r(250)}.${1 + r(250)}`;
    const host = r(3) === 0 ? 'unknown' : `mx${r(9)}.sender${r(500)}.example`;
    const line = (prog: string, p: number, msg: string) => out.push(`${stamp} oldmx postfix/${prog}[${p}]: ${msg}`);
    line('smtpd', pid, `connect from ${host}[${ip}]`);
    if (r(10) === 0) {
      line(
        'smtpd',
        pid,
        `NOQUEUE: reject: RCPT from ${host}[${ip}]: 550 5.1.1 <nobody@company.example>: Recipient address rejected: User unknown; from=<a@b.example> to=<nobody@company.example> proto=ESMTP helo=<${host}>`,
      );
      line('smtpd', pid, `disconnect from ${host}[${ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`);
      continue;
    }
    const qid = (0x10000000 + i).toString(16).toUpperCase();
    const size = 1000 + r(50_000);
    line('smtpd', pid, `${qid}: client=${host}[${ip}]`);
    line('cleanup', 3000 + (i % 7), `${qid}: message-id=<${i}.${r(100000)}@sender.example>`);
    line('qmgr', 999, `${qid}: from=<user${r(1000)}@sender${r(500)}.example>, size=${size}, nrcpt=1 (queue active)`);
    line(
      'local',
      4000 + (i % 5),
      `${qid}: to=<user${r(50)}@company.example>, relay=local, delay=0.1, delays=0.05/0.01/0/0.04, dsn=2.0.0, status=sent (delivered to mailbox)`,
    );
    line('qmgr', 999, `${qid}: removed`);
    line('smtpd', pid, `disconnect from ${host}[${ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5`);
  }
  writeFileSync(file, `${out.join('\n')}\n`);
  return out.length;
}

const pinned = (cmd: string, args: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args]);

/** Runs a command in bash and returns its stdout and the CPU seconds of the children (bash's `times`). */
function timed(cmd: string, args: string[]): { stdout: string; cpuS: number; wallMs: number } {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const [c, a] = pinned(cmd, args);
  const script = `${[c, ...a].map(q).join(' ')} > ${q(join(dir, 'out'))}; times`;
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  // times: "0m0.001s 0m0.002s\n<children user>m<s>s <children sys>m<s>s"
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const secs = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const stdout = execFileSync('cat', [join(dir, 'out')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { stdout, cpuS: (secs[0] ?? 0) + (secs[1] ?? 0), wallMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const file = join(dir, 'maillog');
const lines = writeLog(file);
console.log(
  `# bench:mta-log: ${lines} lines (${SESSIONS} sessions), ${RUNS} runs each, ${PIN ? 'pinned to core 0' : 'not pinned'}; ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg()[0]?.toFixed(1)}, ${new Date().toISOString()}`,
);
try {
  const mp: { loopCpuMs: number; loopWallMs: number; procCpuS: number; sessions: number; messages: number; unknown: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = timed(process.execPath, ['--import', 'tsx', join(root, 'bench/lib/mtalog-parse.ts'), file, 'postfix']);
    const j = JSON.parse(r.stdout.trim()) as { lines: number; unknown: number; sessions: number; messages: number; wallMs: number; cpuMs: number };
    if (j.lines !== lines) throw new Error(`mta-log read ${j.lines} lines of ${lines}`);
    mp.push({ loopCpuMs: j.cpuMs, loopWallMs: j.wallMs, procCpuS: r.cpuS, sessions: j.sessions, messages: j.messages, unknown: j.unknown });
  }
  const pf: { cpuS: number; wallMs: number; received: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = timed('pflogsumm', ['--problems-first', file]);
    const received = Number(/^\s*(\d+)\s+received\b/m.exec(r.stdout)?.[1] ?? Number.NaN);
    pf.push({ cpuS: r.cpuS, wallMs: r.wallMs, received });
  }
  const per100k = (ms: number) => (ms * 100_000) / lines;
  const loopCpu = median(mp.map((m) => m.loopCpuMs));
  const loopWall = median(mp.map((m) => m.loopWallMs));
  const procCpu = median(mp.map((m) => m.procCpuS * 1000));
  const pfCpu = median(pf.map((p) => p.cpuS * 1000));
  const pfWall = median(pf.map((p) => p.wallMs));
  console.log(
    `mta-log (read loop): ${Math.round((lines / loopWall) * 1000).toLocaleString('en')} lines/s, CPU ${per100k(loopCpu).toFixed(0)} ms per 100k lines`,
  );
  console.log(`mta-log (whole process, Node start included): CPU ${per100k(procCpu).toFixed(0)} ms per 100k lines`);
  console.log(
    `pflogsumm (whole process): ${Math.round((lines / pfWall) * 1000).toLocaleString('en')} lines/s, CPU ${per100k(pfCpu).toFixed(0)} ms per 100k lines`,
  );
  console.log(`CPU ratio pflogsumm / mta-log: ${(pfCpu / loopCpu).toFixed(1)}× (read loop), ${(pfCpu / procCpu).toFixed(1)}× (whole process)`);
  const m = mp[0]!;
  console.log(
    `counted: mta-log ${m.sessions} sessions, ${m.messages} messages, ${m.unknown} unknown lines; pflogsumm ${pf[0]?.received} received — ${m.messages === pf[0]?.received ? 'the same messages' : 'DIFFERENT message counts'}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
