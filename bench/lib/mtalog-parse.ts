/**
 * The child of `npm run bench:mta-log`: reads a log file once through what `mailprobe mta-log`
 * runs per line (the line reader, the grammar's parser, the tally) and prints one JSON line:
 * lines, the counts it made, and the CPU and wall time of the loop alone.
 */
import { createReadStream } from 'node:fs';
import { parserFor, type LogFormat } from '../../probe/mtalog/index.js';
import { streamLines } from '../../probe/mtalog/follow.js';
import { Tally } from '../../probe/mtalog/tally.js';

const [file = '', format = 'postfix', ip = '203.0.113.10'] = process.argv.slice(2);
const parser = parserFor(format as LogFormat);
const tally = new Tally({ ips: [{ ip, side: 'old' }], topN: 10, v4Prefix: 24, v6Prefix: 48, startedAt: 0 });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const now = Date.now();
const source = streamLines(createReadStream(file, { highWaterMark: 256 * 1024 }), (line) => tally.add(parser.parse(line), now));
await source.ended;
const wall = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const lines = tally.lines;
const unknown = tally.unknownLines;
const [x] = tally.drain(now).ips;
const sum = (l: { count: number }[] | undefined) => (l ?? []).reduce((a, b) => a + b.count, 0);
process.stdout.write(
  `${JSON.stringify({ lines, unknown, sessions: sum(x?.sessions), messages: sum(x?.messages), wallMs: wall, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`,
);
