import * as koffi from 'koffi';

/** glibc's mallopt parameter number of M_MMAP_THRESHOLD (malloc.h) */
const M_MMAP_THRESHOLD = -3;

/**
 * The threshold the control plane fixes: glibc's own starting value, above
 * a socket read (64 KiB) and below a node's first sync at a thousand nodes
 * (~134 KB).
 */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

function libc(): koffi.LibraryHandle | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return koffi.load('libc.so.6');
  } catch {
    return undefined;
  }
}

/**
 * glibc's `malloc_trim(0)`: releases free pages inside the heap (not only at
 * its top) to the OS. Undefined where the C library is not glibc or cannot
 * be loaded (the trim is an optimisation; nothing depends on it).
 */
export function glibcMallocTrim(): (() => void) | undefined {
  try {
    const trim = libc()?.func('int malloc_trim(size_t)') as ((pad: number) => number) | undefined;
    return trim && (() => void trim(0));
  } catch {
    return undefined;
  }
}

/**
 * Fixes glibc's mmap threshold for the whole process (`mallopt`): blocks of
 * at least `bytes` are mapped on their own and unmapped when freed. glibc
 * otherwise raises the threshold to the size of every mapped block freed, so
 * after the first wave of first syncs (one buffer of ~134 KB per node at
 * 1,000 nodes, written through TLS and HTTP/2) every later one is carved from
 * the heap between the connections' long-lived buffers, and the holes stay:
 * ~25 KiB of RSS per connected agent (bench/RESULTS.md, 2026-12-06 third
 * session). Smaller thresholds map socket reads too and cost CPU. Returns
 * false where the C library is not glibc (nothing depends on it).
 */
export function glibcFixMmapThreshold(bytes: number = MMAP_THRESHOLD_BYTES): boolean {
  try {
    const mallopt = libc()?.func('int mallopt(int, int)') as
      ((param: number, value: number) => number) | undefined;
    return mallopt !== undefined && mallopt(M_MMAP_THRESHOLD, bytes) === 1;
  } catch {
    return false;
  }
}
