/**
 * A real Prometheus with the remote-write receiver on (`--web.enable-remote-write-receiver`), built
 * on bench/lib/prometheus.ts: the flag is added by a one-line exec wrapper, so the process,
 * its port, temp dir and cleanup stay those of startTestPrometheus.
 *
 *   const prom = await startRemoteWritePrometheus({ ruleFiles: [] });
 *   // collector.remote_write.url = prom.writeUrl
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPrometheus, type TestPrometheus, type TestPrometheusOptions } from './prometheus.js';

export interface RemoteWritePrometheus extends TestPrometheus {
  /** The receiver endpoint: `<url>/api/v1/write`. */
  writeUrl: string;
}

export async function startRemoteWritePrometheus(opts: Partial<TestPrometheusOptions> = {}): Promise<RemoteWritePrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'mailprobe-promrw-'));
  const wrapper = join(dir, 'prometheus');
  // exec: the wrapper's pid becomes Prometheus itself, so stop() signals the real process.
  writeFileSync(wrapper, `#!/bin/sh\nexec ${opts.binary ?? 'prometheus'} --web.enable-remote-write-receiver "$@"\n`);
  chmodSync(wrapper, 0o755);
  let prom: TestPrometheus;
  try {
    prom = await startTestPrometheus({ targets: [], ...opts, binary: wrapper });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...prom,
    writeUrl: `${prom.url}/api/v1/write`,
    async stop() {
      await prom.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
