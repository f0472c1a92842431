import { abortAfter, sleep } from '../common/index.js';
import { LaunchError, describeExit } from './launch-error.js';
import type { ServerProcess } from './server-process.js';

/** One readiness check: a value when ready, `undefined` (or a throw) when not yet. */
export type ReadinessProbe<T> = (signal: AbortSignal) => Promise<T | undefined>;

export interface ReadinessOptions {
  name: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

const FIRST_DELAY_MS = 20;
const MAX_DELAY_MS = 250;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Polls `probe` with backoff until it yields a value. Rejects with
 * `signal.reason` when the caller aborts, and with LAUNCH_FAILED (carrying the
 * log tail) when the process exits first or `timeoutMs` passes. Does not stop
 * the process: the caller owns cleanup.
 */
export async function waitUntilReady<T>(
  proc: ServerProcess,
  probe: ReadinessProbe<T>,
  options: ReadinessOptions,
): Promise<T> {
  const processExited = new AbortController();
  void proc.exited.then(() => processExited.abort());
  const { signal: stopWaiting, clear } = abortAfter(
    options.timeoutMs,
    processExited.signal,
    options.signal,
  );
  let lastProbeError: unknown;
  try {
    for (
      let delay = FIRST_DELAY_MS;
      !stopWaiting.aborted;
      delay = Math.min(delay * 2, MAX_DELAY_MS)
    ) {
      try {
        const attempt = abortAfter(PROBE_TIMEOUT_MS, stopWaiting);
        const value = await probe(attempt.signal).finally(attempt.clear);
        if (value !== undefined) return value;
      } catch (err) {
        lastProbeError = err;
      }
      await sleep(delay, stopWaiting).catch(() => {});
    }
  } finally {
    clear();
  }

  options.signal?.throwIfAborted();
  if (proc.exitStatus !== undefined) {
    throw new LaunchError(
      options.name,
      `exited during startup (${describeExit(proc.exitStatus)})`,
      { exitStatus: proc.exitStatus, logTail: proc.tail() },
    );
  }
  throw new LaunchError(options.name, `not ready within ${options.timeoutMs}ms`, {
    logTail: proc.tail(),
    cause: lastProbeError,
  });
}
