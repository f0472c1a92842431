import type * as grpc from '@grpc/grpc-js';
import { silentLogger, type Logger } from '../../common/index.js';

import { setTimeout as delay } from 'node:timers/promises';

/** Waits `ms`; on abort rejects with the signal's reason (as every bench's interrupt path expects). */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    throw signal.aborted ? (signal.reason as Error) : err;
  }
}

/** A logger that drops info/debug and prints warnings and errors of an in-process control plane. */
export function quietLogger(log: (line: string) => void): Logger {
  const l: Logger = {
    ...silentLogger(),
    warn: (m, f) => log(`[controlplane] warn ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => log(`[controlplane] error ${m} ${JSON.stringify(f ?? {})}`),
    child: () => l,
  };
  return l;
}

/** gRPC call options with a deadline `ms` from now. */
export function deadline(ms: number): Partial<grpc.CallOptions> {
  return { deadline: Date.now() + ms };
}

/** A callback-style unary gRPC call as a promise. */
export function unary<T>(
  call: (cb: (err: grpc.ServiceError | null, res: T) => void) => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    call((err, res) => (err ? reject(err) : resolve(res)));
  });
}

/**
 * Polls `done` every 10 ms until true; throws what `failed` reports, or on
 * abort an error naming what it waited for.
 */
export async function until(
  signal: AbortSignal,
  done: () => boolean,
  what: string,
  failed: () => string | undefined = () => undefined,
): Promise<void> {
  for (;;) {
    const failure = failed();
    if (failure !== undefined) throw new Error(failure);
    if (done()) return;
    try {
      await sleep(10, signal);
    } catch (err) {
      throw new Error(`timed out waiting for ${what}`, { cause: err });
    }
  }
}
