import { execFileSync, spawn } from 'node:child_process';
import { MeshError } from '../common/index.js';

/**
 * Runs a system command (ip, sysctl, iptables, clang) to completion and
 * returns its stdout; a non-zero exit rejects with LAUNCH_FAILED carrying the
 * command and its stderr, so a failed setup step names itself.
 */
export async function run(
  command: string,
  args: readonly string[],
  opts: { input?: string; signal?: AbortSignal | undefined } = {},
): Promise<string> {
  opts.signal?.throwIfAborted();
  const child = spawn(command, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.on('error', () => {}); // a command that exits early closes its stdin
  child.stdin.end(opts.input ?? '');
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (e) =>
      reject(
        opts.signal?.aborted
          ? new MeshError('UNAVAILABLE', `${command}: aborted`, { cause: opts.signal.reason })
          : new MeshError('LAUNCH_FAILED', `cannot run ${command}: ${e.message}`, { cause: e }),
      ),
    );
    child.once('close', resolve);
  });
  if (code !== 0) {
    const shown = [command, ...args].join(' ');
    const input = opts.input
      ? `\n  input:\n    ${opts.input.trim().split('\n').join('\n    ')}`
      : '';
    throw new MeshError(
      'LAUNCH_FAILED',
      `${shown} exited ${String(code)}: ${err.trim() || out.trim()}${input}`,
    );
  }
  return out;
}

/** Synchronous best-effort variant for exit hooks; never throws. */
export function runQuietlySync(command: string, args: readonly string[]): void {
  try {
    execFileSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // best effort: the caller is cleaning up on the way out
  }
}
