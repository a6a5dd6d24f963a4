#!/usr/bin/env node
/**
 * `mailprobe <command>`: one binary for every part.
 */
import './node-version.js';
import { applyTuning, PROBE_TUNING, SERVER_TUNING, type NodeTuning } from '../config/node-runtime.js';
import { main } from './commands.js';

// The long-running commands re-execute themselves with their Node settings before they load
// anything (config/node-runtime.ts); here in the binary, not in main(), which the CLI tests run
// in their own process.
const TUNED: Record<string, NodeTuning> = { probe: PROBE_TUNING, collector: SERVER_TUNING, start: SERVER_TUNING };
const [command, ...rest] = process.argv.slice(2);
const tuning = command === undefined ? undefined : TUNED[command];
if (tuning && !rest.includes('--help') && !rest.includes('-h')) {
  const problem = applyTuning(tuning);
  if (problem) {
    process.stderr.write(`mailprobe ${command}: ${problem}\n`);
    process.exit(2);
  }
}

const code = await main(process.argv.slice(2));
if (code !== 0 || !process.env.MAILPROBE_KEEP_RUNNING) process.exitCode = code;
