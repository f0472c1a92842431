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
  /**
   * Users nats-server accepts, with their permissions. Absent: no authentication
   * at all (tests that do not exercise security). Present: every client must log
   * in as one of these users. Ignored by `startEtcd`.
   */
  natsAuthorization?: NatsAuthorization;
}

/** The `authorization { users: [...] }` block of the nats-server config. */
export interface NatsAuthorization {
  users: readonly NatsUser[];
}

export interface NatsUser {
  /** `[A-Za-z0-9._-]+` */
  user: string;
  /**
   * Written in plaintext into the server's config (mode 0600, in its 0700 data
   * dir) and never logged. `[A-Za-z0-9._~+/=-]+`, at least 16 characters.
   */
  password: string;
  /** Absent: the user may publish and subscribe to everything. */
  permissions?: NatsPermissions;
}

/**
 * Allow lists (NATS subjects, `*` and `>` wildcards). Anything not allowed is
 * refused by the server: a denied publish is dropped and the client gets a
 * `Permissions Violation` error; the connection stays up.
 */
export interface NatsPermissions {
  publish: readonly string[];
  subscribe: readonly string[];
  /**
   * May answer requests it received (one reply each, to the requester's
   * reply subject, whatever the publish list says): nats-server's
   * `allow_responses`.
   */
  allowResponses?: boolean;
}

/** etcd and NATS started together; `stop()` stops both (idempotent). */
export interface Infra {
  etcd: EtcdServer;
  nats: NatsServer;
  stop(): Promise<void>;
}
