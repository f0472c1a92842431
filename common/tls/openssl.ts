import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { MeshError } from '../errors.js';

/**
 * Runs Debian's `openssl` with `config` written to `configFile` for the
 * duration of the run (a complete config, so the distribution's openssl.cnf
 * never applies; it holds no secret). Nothing secret is on the command line:
 * keys are written by openssl itself, mode 0600. Rejects with openssl's stderr.
 */
export async function runOpenssl(
  args: readonly string[],
  config: { text: string; file: string },
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await writeFile(config.file, config.text, {
    mode: 0o600,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    await spawnOpenssl([...args, '-config', config.file], opts.signal);
  } finally {
    await rm(config.file, { force: true });
  }
}

function spawnOpenssl(args: readonly string[], signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new MeshError(
              'LAUNCH_FAILED',
              'openssl not found: install the Debian package openssl (npm run setup does)',
              { cause: err },
            )
          : new MeshError('LAUNCH_FAILED', `openssl ${args[0] ?? ''}: ${err.message}`, {
              cause: err,
            }),
      ),
    );
    child.once('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            new MeshError(
              'LAUNCH_FAILED',
              `openssl ${args[0] ?? ''} exited ${String(code)}: ${stderr.trim()}`,
            ),
          ),
    );
  });
}
