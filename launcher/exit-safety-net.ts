import { rmSync } from 'node:fs';

/**
 * Last-resort cleanup when the Node process ends while servers still run.
 *
 * Why a module-level registry at all (the one exception to "no singletons"):
 * a child spawned with `detached: false` is NOT killed when its parent exits on
 * Linux, so a test runner or CLI that exits before awaiting `stop()` — through
 * `process.exit()`, an uncaught exception, or a SIGTERM/SIGINT nobody handles
 * (vitest ends its worker processes with SIGTERM) — would leave etcd/nats-server
 * orphaned, holding ports and temp dirs. The hooks that run then ('exit', and a
 * signal listener) run synchronous code only, so they need a list they can reach
 * without any caller's object. Everything else stays per call: each launch adds
 * its own entries and removes them as soon as it has cleaned up.
 * (SIGKILL to Node bypasses all of this; nothing can help there.)
 */
const pids = new Set<number>();
const dirs = new Set<string>();
const cleanups = new Set<() => void>();
let installed = false;

function killLeftovers(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: the process is exiting
    }
  }
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // best effort: the process is exiting
    }
  }
}

const FATAL_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * Acts only when no one else listens for the signal, i.e. when Node would die
 * of it by default: cleans up, then re-raises it so the process still ends the
 * way it would have. A program with its own handler (a graceful shutdown that
 * calls stop()) is left alone.
 */
function onFatalSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  killLeftovers();
  for (const s of FATAL_SIGNALS) process.removeListener(s, onFatalSignal);
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killLeftovers);
  for (const signal of FATAL_SIGNALS) process.on(signal, onFatalSignal);
}

/**
 * Kill `pid` if Node exits before `release()` is called. Release as soon as the
 * child has been reaped, so a reused pid is never signalled.
 */
export function guardProcess(pid: number): () => void {
  install();
  pids.add(pid);
  return () => pids.delete(pid);
}

/** Remove `dir` if Node exits before `release()` is called. */
export function guardDir(dir: string): () => void {
  install();
  dirs.add(dir);
  return () => dirs.delete(dir);
}

/**
 * Run `cleanup` (synchronous, best effort; e.g. deleting network namespaces)
 * if Node exits before `release()` is called. Runs after the guarded
 * processes were killed.
 */
export function guardCleanup(cleanup: () => void): () => void {
  install();
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
