/**
 * A peer daemon (Dovecot, …) started by the lab or the tests must not outlive the Node process
 * that started it, even when that process is SIGKILLed (a test runner's timeout, an OOM kill):
 * Node cannot ask the kernel for PR_SET_PDEATHSIG. So the daemon runs under a small `sh`
 * watchdog whose standard input is a pipe from Node: when the pipe ends (Node exited, however),
 * the watchdog sends the daemon SIGTERM. SIGTERM to the watchdog (ChildProcess.kill) is passed on
 * too, and the watchdog exits with the daemon's status, so `exit` still means the daemon ended.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';

// $1.. is the daemon's command line. The reader keeps a copy of stdin (fd 3): an asynchronous list
// of a non-interactive shell reads /dev/null otherwise.
const WATCHDOG = `exec 3<&0
"$@" </dev/null &
c=$!
trap 'kill -TERM $c 2>/dev/null' TERM INT HUP
( while read -r _ <&3; do :; done; kill -TERM $c 2>/dev/null ) &
r=$!
exec 3<&-
wait $c
s=$?
while kill -0 $c 2>/dev/null; do wait $c; s=$?; done
kill $r 2>/dev/null
exit $s
`;

/**
 * Spawns `bin args` tied to this process. stdin is the watchdog's pipe (do not write to it);
 * `stop` ends it, which stops the daemon as a parent's death would.
 */
export function spawnTied(bin: string, args: readonly string[], opts: Omit<SpawnOptions, 'stdio'> & { stderr?: 'pipe' | 'ignore' } = {}): ChildProcess {
  const { stderr = 'pipe', ...rest } = opts;
  return spawn('/bin/sh', ['-c', WATCHDOG, 'mailprobe-watchdog', bin, ...args], { ...rest, stdio: ['pipe', 'ignore', stderr] });
}
