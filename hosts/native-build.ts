import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './command.js';

/**
 * Compiles one C file with clang (a bootstrap package) once per source
 * version into `buildDir` (build output, not committed: .gitignore .build/)
 * and returns the binary's path, `<name>-<hash of the source>`. Safe to call
 * concurrently from several processes: each compiles to its own file and
 * renames it into place, so nobody ever runs a half-written binary.
 */
export async function buildNative(opts: {
  source: string;
  buildDir: string;
  /** linker flags after the source, e.g. ['-lbpf'] */
  libs?: readonly string[];
  signal?: AbortSignal;
}): Promise<string> {
  const source = await readFile(opts.source);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const name = basename(opts.source, '.c');
  const binary = `${opts.buildDir}${name}-${hash}`;
  try {
    await access(binary);
    return binary;
  } catch {
    // not built yet
  }
  await mkdir(opts.buildDir, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    await run(
      'clang',
      ['-O2', '-Wall', '-pthread', '-o', partial, opts.source, ...(opts.libs ?? [])],
      opts.signal ? { signal: opts.signal } : {},
    );
    await rename(partial, binary);
  } finally {
    await rm(partial, { force: true });
  }
  return binary;
}

/** hosts/native/mp-host.c, the test hosts' listener and load generator, built by `buildNative`. */
export function buildMpHost(opts: { signal?: AbortSignal } = {}): Promise<string> {
  return buildNative({
    source: fileURLToPath(new URL('native/mp-host.c', import.meta.url)),
    buildDir: fileURLToPath(new URL('../.build/hosts/', import.meta.url)),
    ...opts,
  });
}
