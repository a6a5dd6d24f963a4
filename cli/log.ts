import { pino, type Logger } from 'pino';

/** One JSON line per event on stderr; MAILPROBE_LOG_LEVEL sets the level (default info). */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.MAILPROBE_LOG_LEVEL ?? 'info' }, pino.destination({ dest: 2, sync: true }));
}
