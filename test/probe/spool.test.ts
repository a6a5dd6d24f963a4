import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Spool, SpoolLockedError } from '../../probe/spool.js';
import type { AuthResult } from '../../protocol/results.js';
import { captureLogger, tempDir } from './support.js';

const C1 = 'http://127.0.0.1:1';
const C2 = 'http://127.0.0.1:2';

let n = 0;
const result = (subject = 's'): AuthResult => ({
  type: 'auth',
  method: 'dkim',
  subject,
  pass: true,
  ok: true,
  startedAt: 1_700_000_000_000 + n,
  durationSeconds: 0.001,
  detail: `#${n++}`,
});
const details = (json: string) => (JSON.parse(json) as AuthResult[]).map((r) => r.detail);

function open(dir: string, maxBytes = 1 << 20, collectors = [C1, C2]) {
  const { log, lines } = captureLogger();
  const drops: number[] = [];
  const spool = Spool.open({ dir, maxBytes, collectors, log, onDrop: (k) => drops.push(k) });
  return { spool, lines, drops };
}

test('batches survive a reopen with the same ids, seqs and results, in order; done batches and acks are kept apart per collector', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = open(dir).spool;
    a.appendResults([result(), result(), result()]);
    const b1 = a.seal('batch-one-aaaa', 1000);
    a.appendResults([result(), result()]);
    const b2 = a.seal('batch-two-bbbb', 2000);
    a.appendResults([result()]);
    assert.equal(b1?.seq, 0);
    assert.equal(b2?.seq, 1);
    a.ack('batch-one-aaaa', C1, true);
    assert.equal(a.nextFor(C1)?.id, 'batch-two-bbbb');
    assert.equal(a.nextFor(C2)?.id, 'batch-one-aaaa');
    a.ack('batch-one-aaaa', C2, false); // rejected for good by C2: done for it too
    assert.equal(a.has('batch-one-aaaa'), false);
    a.ack('batch-two-bbbb', C2, true);
    a.close();

    const { spool: b, lines } = open(dir);
    assert.deepEqual(
      b.batches().map((x) => [x.id, x.seq, x.createdAt, x.count]),
      [['batch-two-bbbb', 1, 2000, 2]],
    );
    assert.deepEqual(details(b.batches()[0]?.resultsJson ?? '[]'), details(b2?.resultsJson ?? '[]'));
    assert.equal(b.nextFor(C2), undefined, 'C2 already took batch two');
    assert.equal(b.nextFor(C1)?.id, 'batch-two-bbbb');
    assert.equal(b.openCount, 1, 'the unsealed result is still there');
    assert.equal(b.nextSeq, 2);
    const b3 = b.seal('batch-three-cc', 3000);
    assert.equal(b3?.seq, 2);
    assert.equal(lines.filter((l) => l.level >= 40).length, 0);
    b.close();
  } finally {
    cleanup();
  }
});

test('a torn last record (crash mid-write) is skipped with a log line, cut off, and the spool keeps working', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = open(dir).spool;
    a.appendResults([result(), result()]);
    a.seal('batch-kept-1234', 1000);
    a.appendResults([result()]);
    a.close();
    const file = join(dir, 'spool.log');
    const whole = statSync(file).size;
    // Half of a seal record: as if the process died inside write().
    appendFileSync(file, '1a2b3c4d {"t":"b","id":"batch-torn-9999","se');

    const { spool: b, lines } = open(dir);
    const torn = lines.find((l) => l.code === 'spool_torn_record');
    assert.ok(torn, 'a log line names the torn record');
    assert.equal(torn.level, 40);
    assert.deepEqual(
      b.batches().map((x) => x.id),
      ['batch-kept-1234'],
    );
    assert.equal(b.openCount, 1, 'the open result before the torn seal is kept');
    b.appendResults([result()]);
    b.seal('batch-after-5678', 2000);
    b.close();
    assert.ok(!readFileSync(file, 'utf8').includes('batch-torn'), 'the torn tail is gone from the file');

    const { spool: c, lines: lines2 } = open(dir);
    assert.deepEqual(
      c.batches().map((x) => [x.id, x.count]),
      [
        ['batch-kept-1234', 2],
        ['batch-after-5678', 2],
      ],
    );
    assert.equal(lines2.filter((l) => l.level >= 40).length, 0);
    c.close();
    assert.ok(whole > 0);
  } finally {
    cleanup();
  }
});

test('a damaged record in the middle is skipped, the rest is loaded; an empty or garbage file never stops the start', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = open(dir).spool;
    a.appendResults([result('x')]);
    a.seal('batch-first-111', 1000);
    a.appendResults([result('y')]);
    a.seal('batch-second-22', 2000);
    a.close();
    const file = join(dir, 'spool.log');
    const text = readFileSync(file, 'utf8');
    // Flip a character inside the first result record: its checksum no longer matches.
    const i = text.indexOf('"subject":"x"');
    writeFileSync(file, `${text.slice(0, i)}"subject":"z"${text.slice(i + 13)}`);
    const { spool: b, lines } = open(dir);
    assert.ok(lines.some((l) => l.code === 'spool_bad_record'));
    assert.deepEqual(
      b.batches().map((x) => [x.id, x.count]),
      [
        ['batch-first-111', 0],
        ['batch-second-22', 1],
      ],
    );
    b.close();

    writeFileSync(file, Buffer.from([0xff, 0x00, 0x41, 0x0a, 0x0a, 0x42]));
    const { spool: c, lines: l2 } = open(dir);
    assert.equal(c.batches().length, 0);
    assert.ok(l2.some((l) => l.code === 'spool_bad_record') && l2.some((l) => l.code === 'spool_torn_record'));
    c.close();
    truncateSync(file, 0);
    open(dir).spool.close();
  } finally {
    cleanup();
  }
});

test('spool full: the oldest batches are dropped and counted, the newest kept, the size stays under the limit', () => {
  const { dir, cleanup } = tempDir();
  try {
    const { spool, drops, lines } = open(dir, 4096);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      spool.appendResults([result(), result()]);
      const id = `batch-${String(i).padStart(4, '0')}-xxxx`;
      ids.push(id);
      spool.seal(id, i);
    }
    const kept = spool.batches().map((b) => b.id);
    const dropped = drops.reduce((a, b) => a + b, 0);
    assert.ok(dropped > 0);
    assert.equal(spool.stats().dropped, dropped);
    assert.equal(kept.length + dropped, 40);
    assert.deepEqual(kept, ids.slice(40 - kept.length), 'what is left is the newest, in order');
    assert.ok(spool.stats().bytes <= 4096, `${spool.stats().bytes} bytes`);
    assert.ok(lines.some((l) => l.code === 'spool_full'));
    // The oldest batch is being pushed: the next oldest goes instead.
    const [oldest, second] = spool.batches();
    spool.pin(oldest?.id ?? '');
    spool.appendResults([result(), result()]);
    spool.seal('batch-pinned-test', 99);
    assert.ok(spool.has(oldest?.id ?? ''), 'a batch in flight is not dropped');
    assert.equal(spool.has(second?.id ?? ''), false);
    spool.unpin(oldest?.id ?? '');
    spool.close();
    const again = open(dir, 4096).spool;
    const after = [kept[0], ...kept.slice(2), 'batch-pinned-test'];
    assert.deepEqual(
      again.batches().map((b) => b.id),
      after,
      'drops are on disk too',
    );
    again.close();
  } finally {
    cleanup();
  }
});

test('done batches are compacted away: the file stays bounded over many batches', () => {
  const { dir, cleanup } = tempDir();
  try {
    const { spool } = open(dir, 1 << 20, [C1]);
    const big = 'x'.repeat(2000);
    for (let i = 0; i < 250; i++) {
      spool.appendResults(Array.from({ length: 5 }, () => ({ ...result(), detail: big })));
      const b = spool.seal(`batch-${i}-compact`, i);
      if (b) spool.ack(b.id, C1, true);
    }
    assert.equal(spool.stats().batches, 0);
    // 250 batches of ~10 KB went through; compaction keeps the file near its 1 MiB slack.
    assert.ok(spool.fileBytes < 1.2 * 1024 * 1024, `file ${spool.fileBytes} bytes after 2.5 MB of batches`);
    assert.ok(statSync(join(dir, 'spool.log')).size === spool.fileBytes);
    spool.close();
  } finally {
    cleanup();
  }
});

test('a seal takes at most `max` results; the rest stay open, also across a reopen', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = open(dir).spool;
    const rs = Array.from({ length: 7 }, () => result());
    a.appendResults(rs);
    const b = a.seal('batch-partial-1', 1000, 5);
    assert.equal(b?.count, 5);
    assert.deepEqual(
      details(b?.resultsJson ?? '[]'),
      rs.slice(0, 5).map((r) => r.detail),
    );
    assert.equal(a.openCount, 2);
    a.close();
    const c = open(dir).spool;
    assert.deepEqual(
      c.batches().map((x) => [x.id, x.count]),
      [['batch-partial-1', 5]],
    );
    assert.equal(c.openCount, 2);
    const d = c.seal('batch-partial-2', 2000);
    assert.deepEqual(
      details(d?.resultsJson ?? '[]'),
      rs.slice(5).map((r) => r.detail),
    );
    c.close();
  } finally {
    cleanup();
  }
});

test('one probe per spool directory: a live holder locks it out, a dead one is taken over', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = open(dir).spool;
    assert.throws(
      () => open(dir),
      (e: Error) => e instanceof SpoolLockedError && /already open in this process/.test(e.message),
    );
    a.close();
    // A lock held by another live process (this test's parent runner).
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`);
    assert.throws(
      () => open(dir),
      (e: Error) => e instanceof SpoolLockedError && e.message.includes(`pid ${process.ppid}`),
    );
    // A lock left by a process that is gone.
    const { spawnSync } = await import('node:child_process');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(join(dir, 'lock'), `${gone}\n`);
    const { spool, lines } = open(dir);
    assert.ok(lines.some((l) => /taking over/.test(l.msg)));
    assert.equal(readFileSync(join(dir, 'lock'), 'utf8').trim(), String(process.pid));
    spool.close();
    assert.throws(() => readFileSync(join(dir, 'lock')), /ENOENT/, 'close removes the lock');
  } finally {
    cleanup();
  }
});
