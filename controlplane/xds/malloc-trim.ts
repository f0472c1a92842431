import * as koffi from 'koffi';

/**
 * glibc's `malloc_trim(0)`: releases free pages inside the heap (not only at
 * its top) to the OS. Undefined where the C library is not glibc or cannot
 * be loaded (the trim is an optimisation; nothing depends on it).
 */
export function glibcMallocTrim(): (() => void) | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t)') as (pad: number) => number;
    return () => void trim(0);
  } catch {
    return undefined;
  }
}
