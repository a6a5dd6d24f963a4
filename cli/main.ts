#!/usr/bin/env node
/**
 * `mailprobe <command>`: one binary for every part.
 */
import './node-version.js';
import { execWithProbeFlags } from '../probe/node-flags.js';
import { main } from './commands.js';

// The probe re-executes itself with its V8 flags before it loads anything (probe/node-flags.ts);
// here in the binary, not in main(), which the CLI tests run in their own process.
if (process.argv[2] === 'probe') {
  const problem = execWithProbeFlags();
  if (problem) {
    process.stderr.write(`mailprobe probe: ${problem}\n`);
    process.exit(2);
  }
}

const code = await main(process.argv.slice(2));
if (code !== 0 || !process.env.MAILPROBE_KEEP_RUNNING) process.exitCode = code;
