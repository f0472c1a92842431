import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  readonly pid: number | undefined;
  /** resolves with the exit code (or signal name) once the process has exited */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** writes one line to the child's stdin (only with `stdin: true`; dropped once it has exited) */
  send(line: string): void;
}

/**
 * A TypeScript script in a child process (`node [...nodeArgs] --import tsx
 * SCRIPT ...args`), each stdout line handed to `onLine` and each stderr line
 * to `onStderr`; with `stdin` the parent can `send` it lines. The child is
 * killed if this process exits first.
 */
export function spawnTsx(
  script: string,
  args: readonly string[],
  opts: {
    cwd: string;
    onLine: (line: string) => void;
    onStderr?: (line: string) => void;
    /** node options before the script, e.g. --expose-gc, --cpu-prof */
    nodeArgs?: readonly string[];
    stdin?: boolean;
  },
): Child {
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args],
    { cwd: opts.cwd, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] },
  );
  child.stdin?.on('error', () => undefined);
  const killOnExit = (): void => void child.kill('SIGKILL');
  // One listener per running child is expected (benchmarks run dozens of
  // workers): raise the limit with it rather than trip Node's leak warning.
  process.setMaxListeners(process.getMaxListeners() + 1);
  process.once('exit', killOnExit);
  let forgotten = false;
  const forget = (): void => {
    if (forgotten) return;
    forgotten = true;
    process.removeListener('exit', killOnExit);
    process.setMaxListeners(Math.max(10, process.getMaxListeners() - 1));
  };
  createInterface({ input: child.stdout! }).on('line', opts.onLine);
  createInterface({ input: child.stderr! }).on('line', (l) => opts.onStderr?.(l));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      forget();
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      forget();
      resolve(err.message);
    });
  });
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid,
    exited,
    send: (line) => {
      if (child.stdin?.writable) child.stdin.write(`${line}\n`);
    },
    stop: (graceMs = 5_000) =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
