/**
 * Every command of `mailprobe` answers `--help` (exit 0, its usage on stdout) and refuses an
 * unknown option (exit 2, the option named, where the options are listed, no stack trace). All
 * cases run through cli/commands.ts's main() in one child process (a process per case would load
 * the CLI 30 times). The options probe and mta-log share are checked the same way, before the plan
 * is read.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tempDir } from '../probe/support.js';

const root = new URL('../../', import.meta.url).pathname;
const tmp = tempDir('mailprobe-cli-help-');
after(() => tmp.cleanup());

/** Each command line as the user types it after `mailprobe`, and the usage line its help starts with. */
const COMMANDS: [string[], RegExp][] = [
  [['start'], /^usage: mailprobe start \[--duration SECONDS\]/],
  [['collector'], /^usage: mailprobe collector --config FILE/],
  [['probe'], /^usage: mailprobe probe --config FILE --id ID --region REGION/],
  [['sink'], /^usage: mailprobe sink --config FILE/],
  [['mta-log'], /^usage: mailprobe mta-log --config FILE --id ID --ip IP/],
  [['report'], /^usage: mailprobe report --prometheus URL/],
  [['preflight'], /^usage: mailprobe preflight --config FILE --id ID --region REGION/],
  [['render'], /^usage: mailprobe render alertmanager --config FILE/],
  [['render', 'alertmanager'], /^usage: mailprobe render alertmanager --config FILE/],
  [['config'], /^usage: mailprobe config check FILE/],
  [['config', 'check'], /^usage: mailprobe config check FILE/],
  [['config', 'schema'], /^usage: mailprobe config check FILE/],
  [['token'], /^usage: mailprobe token/],
];

/** The options probe and mta-log share (cli/plan.ts): checked the same way, before the plan is read. */
const IDENTITY = ['--config', '/nonexistent/plan.yaml', '--id', 'p-eu', '--region', 'eu'];
const SHARED: string[][] = [
  ['probe', ...IDENTITY, '--health-listen', 'nope'],
  ['mta-log', ...IDENTITY, '--ip', '127.0.0.2', '--file', '/nonexistent/maillog', '--health-listen', 'nope'],
];

interface Outcome {
  argv: string[];
  code: number;
  out: string;
  err: string;
}

test('every command: --help exits 0 with its usage; an unknown option exits 2 naming it, without a stack trace; a bad --health-listen is a usage error of probe and mta-log alike', () => {
  const script = join(tmp.dir, 'cases.mts');
  writeFileSync(
    script,
    `import { main } from ${JSON.stringify(join(root, 'cli/commands.ts'))};
const cases = ${JSON.stringify(
      COMMANDS.flatMap(([cmd]) => [
        [...cmd, '--help'],
        [...cmd, '-h'],
        [...cmd, '--no-such-option'],
      ]),
    )};
const results = [];
const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
const shared = ${JSON.stringify(SHARED)};
for (const argv of [...cases, ...shared]) {
  let out = '';
  let err = '';
  process.stdout.write = (c) => ((out += String(c)), true);
  process.stderr.write = (c) => ((err += String(c)), true);
  let code;
  try {
    code = await main(argv);
  } catch (e) {
    code = -1;
    err += String(e && e.stack);
  }
  process.stdout.write = write.out;
  process.stderr.write = write.err;
  results.push({ argv, code, out, err });
}
write.out(JSON.stringify({ results }) + '\\n');
`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const { results } = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { results: Outcome[] };
  assert.equal(results.length, COMMANDS.length * 3 + SHARED.length);
  for (const [i, [cmd, usage]] of COMMANDS.entries()) {
    const name = cmd.join(' ');
    for (const help of [results[i * 3], results[i * 3 + 1]]) {
      assert.equal(help?.code, 0, `${help?.argv.join(' ')}: ${help?.err}`);
      assert.match(help.out, usage, `${help.argv.join(' ')}`);
      assert.equal(help.err, '', `${help.argv.join(' ')} writes nothing to stderr`);
    }
    const bad = results[i * 3 + 2];
    assert.equal(bad?.code, 2, `${name} --no-such-option: ${bad?.err}`);
    assert.equal(bad.out, '');
    assert.doesNotMatch(bad.err, /\n\s+at /, 'no stack trace');
    const top = cmd[0];
    if (name === 'config') assert.match(bad.err, /^mailprobe config: unknown subcommand "--no-such-option"\n\nusage: mailprobe config check FILE/);
    else assert.equal(bad.err, `mailprobe ${top}: Unknown option '--no-such-option' (\`mailprobe ${top} --help\` lists the options)\n`, name);
  }
  for (const r of results.slice(COMMANDS.length * 3)) {
    assert.deepEqual(
      [r.code, r.out, r.err],
      [2, '', `mailprobe ${r.argv[0]}: --health-listen: "nope" is not host:port (or [v6]:port): the port is missing\n`],
      r.argv.join(' '),
    );
  }
});
