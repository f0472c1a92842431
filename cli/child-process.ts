import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../common/index.js';

/** The repository root (this file is cli/child-process.ts). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Component {
  readonly name: string;
  readonly pid: number;
  /** the component's `{"event":"ready",...}` line */
  readonly ready: Record<string, unknown>;
  readonly exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a meshplane component (a TypeScript entry point run through tsx) as
 * a child process, sends its stderr to a log file, and waits for the JSON
 * line `{"event":"ready"}` on its stdout. A child that exits first rejects
 * with its exit status and the log path.
 */
export async function startComponent(
  name: string,
  entry: string,
  args: string[],
  opts: { logFile: string; readyTimeoutMs?: number; signal?: AbortSignal },
): Promise<Component> {
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      import.meta.resolve('tsx'),
      fileURLToPath(new URL(entry, new URL('..', import.meta.url))),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT },
  );
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new MeshError('TIMEOUT', `${name} did not become ready in time; see ${opts.logFile}`));
    }, opts.readyTimeoutMs ?? 60_000);
    const onAbort = (): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new MeshError('UNAVAILABLE', `${name}: start aborted`));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      log.write(`[stdout] ${line}\n`);
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.event === 'ready') {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(msg);
        }
      } catch {
        // not a JSON line: logged above
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new MeshError(
          'LAUNCH_FAILED',
          `${name} exited with ${String(code)} before it was ready; see ${opts.logFile}`,
        ),
      );
    });
  });
  return {
    name,
    pid: child.pid ?? -1,
    ready,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        process.stderr.write(
          `meshctl: ${name} did not stop within ${graceMs} ms of SIGTERM; killing it\n`,
        );
        child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}
