/** Sleep that ends early (rejecting) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A signal that aborts at a deadline; `clear()` stops its timer once the work is done. */
export interface AbortAfter {
  readonly signal: AbortSignal;
  readonly clear: () => void;
}

/**
 * A signal that aborts with a TimeoutError after `ms`, or with the reason of
 * the first of `signals` to abort. Not `AbortSignal.any([AbortSignal.timeout(ms), ...])`:
 * on Node 20 a timeout signal that only `any()` refers to can be garbage
 * collected before it fires (nodejs/node#57736), and the combined signal then
 * never aborts (a server-side `wait` ran past its timeout until the client's
 * own deadline). Here the timer holds its controller until it fires or is
 * cleared; like AbortSignal.timeout's, it does not keep the process alive.
 */
export function abortAfter(ms: number, ...signals: (AbortSignal | undefined)[]): AbortAfter {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')),
    ms,
  );
  timer.unref();
  const others = signals.filter((s): s is AbortSignal => s !== undefined);
  return {
    signal: others.length > 0 ? AbortSignal.any([controller.signal, ...others]) : controller.signal,
    clear: () => clearTimeout(timer),
  };
}

/**
 * Settles as `promise` does or, when `signal` aborts first, with what
 * `onAbort` returns (or throws). The abort listener is removed as soon as
 * either happens, so racing one long-lived signal again and again (a
 * campaign per election round, a wait per benchmark step) leaves none behind.
 */
export async function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onAbort: () => T,
): Promise<T> {
  if (signal.aborted) return onAbort();
  let abort!: () => void;
  const aborted = new Promise<T>((resolve) => {
    abort = () => resolve(Promise.resolve().then(onAbort));
  });
  signal.addEventListener('abort', abort, { once: true });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

/** Injected time source, so tests control time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
