import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { sleep } from '../common/index.js';
import { guardProcess } from './exit-safety-net.js';
import { LaunchError, type ExitStatus } from './launch-error.js';

/** How many log lines a failure report shows. */
const TAIL_LINES = 20;

/** A running server child process, its log tail and its exit. */
export interface ServerProcess {
  readonly pid: number;
  /** Resolves once the process has exited and its output is drained. Never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** `undefined` while the process runs. */
  readonly exitStatus: ExitStatus | undefined;
  /** The last log lines of stdout and stderr, oldest first. */
  tail(): string[];
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  terminate(graceMs: number): Promise<void>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/**
 * Spawns `binary` and resolves once the OS started it, or rejects with
 * LAUNCH_FAILED (missing binary, no permission).
 */
export async function spawnServer(
  name: string,
  binary: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  const child = spawn(binary, args, {
    detached: false,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });

  const lines: string[] = [];
  const onLine = (line: string): void => {
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
    try {
      options.log?.(line);
    } catch {
      // a throwing log sink must not break the server's lifecycle
    }
  };
  forwardLines(child.stdout, onLine);
  forwardLines(child.stderr, onLine);

  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => {
      reject(new LaunchError(name, `cannot run ${binary}: ${err.message}`, { cause: err }));
    });
  });
  // Later 'error' events (a failed kill) must not crash the process; exit tells the story.
  child.on('error', () => {});
  const pid = child.pid;
  if (pid === undefined) throw new LaunchError(name, `${binary} started without a pid`);

  const release = guardProcess(pid);
  child.once('exit', release);
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    // 'close' rather than 'exit': all log lines have been read by then.
    child.once('close', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });

  let terminating: Promise<void> | undefined;
  const terminate = async (graceMs: number): Promise<void> => {
    if (exitStatus !== undefined) return;
    child.kill('SIGTERM');
    // The grace timer is cancelled once the child exits, so it never holds Node open.
    const grace = new AbortController();
    const graceOver = sleep(graceMs, grace.signal).then(
      () => true,
      () => false,
    );
    const timedOut = await Promise.race([exited.then(() => false), graceOver]);
    grace.abort();
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  return {
    pid,
    exited,
    get exitStatus() {
      return exitStatus;
    },
    tail: () => [...lines],
    terminate: (graceMs) => (terminating ??= terminate(graceMs)),
  };
}

function forwardLines(stream: Readable, onLine: (line: string) => void): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}
