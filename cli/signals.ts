/**
 * Waiting for SIGTERM or SIGINT, shared by the long-running commands. A module of its own so a
 * command imports only this, not another command's module (the probe must not load the
 * collector's fastify to wait for a signal).
 */
/** Resolves when SIGTERM or SIGINT arrives. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(s);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}
