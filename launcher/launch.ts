import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardDir } from './exit-safety-net.js';
import { waitUntilReady, type ReadinessProbe } from './readiness.js';
import { spawnServer, type ServerProcess } from './server-process.js';
import type { LaunchOptions } from './types.js';

const DEFAULT_START_TIMEOUT_MS = 20_000;
/** etcd and nats-server both shut down in well under a second on SIGTERM. */
const STOP_GRACE_MS = 5_000;

/** What differs between servers; the lifecycle around it is shared. */
export interface ServerSpec<T> {
  name: string;
  binary: string;
  /** mkdtemp prefix; starts with `meshplane-` so leftovers are easy to spot. */
  dirPrefix: string;
  env?: NodeJS.ProcessEnv;
  /** Writes config files into the fresh data dir and returns the command line. */
  prepare(dataDir: string): Promise<string[]>;
  /** Readiness check; its value (e.g. discovered ports) is handed back as `ready`. */
  probe(server: { dataDir: string; pid: number }): ReadinessProbe<T>;
}

export interface LaunchedServer<T> {
  readonly ready: T;
  readonly dataDir: string;
  readonly pid: number;
  /** Idempotent; concurrent callers share one shutdown. A plain function, safe to pass around. */
  readonly stop: () => Promise<void>;
}

/**
 * Creates a data dir, starts the server and waits until it is ready. On any
 * failure or abort the child is killed and the dir removed before rejecting.
 * After startup, aborting `options.signal` stops the server.
 */
export async function launchServer<T>(
  spec: ServerSpec<T>,
  options: LaunchOptions = {},
): Promise<LaunchedServer<T>> {
  const { signal, keepData = false, log } = options;
  signal?.throwIfAborted();

  const dataDir = await mkdtemp(join(options.baseDir ?? tmpdir(), spec.dirPrefix));
  const releaseDir = keepData ? () => false : guardDir(dataDir);
  const removeDir = async (): Promise<void> => {
    if (!keepData) await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
    releaseDir();
  };

  let proc: ServerProcess | undefined;
  let ready: T;
  try {
    const args = await spec.prepare(dataDir);
    signal?.throwIfAborted();
    proc = await spawnServer(spec.name, spec.binary, args, {
      ...(spec.env ? { env: spec.env } : {}),
      ...(log ? { log } : {}),
    });
    ready = await waitUntilReady(proc, spec.probe({ dataDir, pid: proc.pid }), {
      name: spec.name,
      timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    await proc?.terminate(STOP_GRACE_MS);
    await removeDir();
    throw err;
  }

  const running = proc;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      signal?.removeEventListener('abort', onAbort);
      await running.terminate(STOP_GRACE_MS);
      await removeDir();
    })());
  const onAbort = (): void => {
    stop().catch((err: unknown) => log?.(`${spec.name}: stop after abort failed: ${String(err)}`));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) {
    // Aborted between readiness and here: behave as an abort during startup.
    await stop();
    signal.throwIfAborted();
  }

  return { ready, dataDir, pid: running.pid, stop };
}
