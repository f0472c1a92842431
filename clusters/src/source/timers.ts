/** Injected timers, so tests control time. Handles are opaque. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

type NodeTimer = ReturnType<typeof setTimeout>;

export function systemTimers(): Timers {
  return {
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeTimer),
    setInterval: (callback, ms) => setInterval(callback, ms),
    clearInterval: (handle) => clearInterval(handle as NodeTimer),
  };
}

/** Resolves after `ms`, or early (without rejecting) when the signal aborts. */
export function pause(timers: Timers, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      timers.clearTimeout(handle);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const handle = timers.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export interface Backoff {
  /** first retry delay; default 200 ms */
  initialMs?: number;
  /** longest delay; default 5 s */
  maxMs?: number;
}

export function backoffDelay(backoff: Backoff, attempt: number): number {
  const initial = backoff.initialMs ?? 200;
  return Math.min(backoff.maxMs ?? 5_000, initial * 2 ** Math.min(attempt, 20));
}
