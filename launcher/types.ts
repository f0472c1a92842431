/**
 * The launcher's public types. Servers are owned by whoever started them: the
 * caller must call `stop()` (or abort the signal it passed) exactly when it no
 * longer needs them; `stop()` is idempotent and safe to call concurrently.
 */

export type ServerBinary = 'etcd' | 'nats-server';

export interface EtcdServer {
  /** Client URL, `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** Fresh temporary directory holding etcd's data; removed by `stop()` unless `keepData`. */
  readonly dataDir: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after a grace period; removes `dataDir` unless `keepData`. Idempotent. */
  stop(): Promise<void>;
}

export interface NatsServer {
  /** Client URL, `nats://127.0.0.1:PORT`. */
  readonly url: string;
  /** HTTP monitoring base URL, `http://127.0.0.1:PORT` (`/healthz`, `/varz`, `/jsz`). */
  readonly monitorUrl: string;
  /** Fresh temporary directory holding the config and the JetStream store. */
  readonly dataDir: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after a grace period; removes `dataDir` unless `keepData`. Idempotent. */
  stop(): Promise<void>;
}

export interface LaunchOptions {
  /**
   * Aborting during startup kills the child, removes its directory and rejects
   * with `signal.reason`; aborting after startup stops the server.
   */
  signal?: AbortSignal;
  /** Parent directory for the data directories (default: `os.tmpdir()`). */
  baseDir?: string;
  /** Keep data directories after `stop()` or a failed startup, for debugging. */
  keepData?: boolean;
  /** Receives the server's log lines (stdout and stderr), without trailing newline. */
  log?: (line: string) => void;
  /** How long to wait for readiness before failing with LAUNCH_FAILED (default 20000). */
  startTimeoutMs?: number;
  /** Executables to run instead of the ones `findBinary` finds (other versions, tests). */
  binaries?: Partial<Record<ServerBinary, string>>;
}

/** etcd and NATS started together; `stop()` stops both (idempotent). */
export interface Infra {
  etcd: EtcdServer;
  nats: NatsServer;
  stop(): Promise<void>;
}
