#!/usr/bin/env node
/**
 * `mailprobe <command>`: one binary for every part.
 */
import './node-version.js';
import { main } from './commands.js';

const code = await main(process.argv.slice(2));
if (code !== 0 || !process.env.MAILPROBE_KEEP_RUNNING) process.exitCode = code;
