import { MeshError } from '../common/index.js';

/** How a child process ended. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A server that could not be started (LAUNCH_FAILED). Carries the server's last
 * log lines and, when it died during startup, how it exited — callers such as
 * the etcd port-clash retry classify on these fields, not on the message.
 */
export class LaunchError extends MeshError {
  readonly server: string;
  readonly exitStatus: ExitStatus | undefined;
  readonly logTail: readonly string[];

  constructor(
    server: string,
    reason: string,
    details: { exitStatus?: ExitStatus; logTail?: readonly string[]; cause?: unknown } = {},
  ) {
    const logTail = details.logTail ?? [];
    const shownLog =
      logTail.length > 0
        ? `\n  last log lines:\n${logTail.map((l) => `    ${l}`).join('\n')}`
        : '\n  (no log output)';
    super('LAUNCH_FAILED', `${server}: ${reason}${shownLog}`, { cause: details.cause });
    this.name = 'LaunchError';
    this.server = server;
    this.exitStatus = details.exitStatus;
    this.logTail = logTail;
  }
}

export function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `killed by ${status.signal}` : `exit code ${String(status.code)}`;
}
