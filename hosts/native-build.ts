import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run } from './command.js';

const SOURCE = fileURLToPath(new URL('native/mp-host.c', import.meta.url));
/** Build output, not committed (.gitignore: .build/). */
const BUILD_DIR = fileURLToPath(new URL('../.build/hosts/', import.meta.url));

/**
 * Compiles hosts/native/mp-host.c with clang (a bootstrap package) once per
 * source version and returns the binary's path. Safe to call concurrently
 * from several processes: each compiles to its own file and renames it into
 * place, so nobody ever runs a half-written binary.
 */
export async function buildMpHost(opts: { signal?: AbortSignal } = {}): Promise<string> {
  const source = await readFile(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const binary = `${BUILD_DIR}mp-host-${hash}`;
  try {
    await access(binary);
    return binary;
  } catch {
    // not built yet
  }
  await mkdir(BUILD_DIR, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    await run('clang', ['-O2', '-Wall', '-pthread', '-o', partial, SOURCE], opts);
    await rename(partial, binary);
  } finally {
    await rm(partial, { force: true });
  }
  return binary;
}
