/**
 * MurmurHash3's 32-bit block mix and finalizer (Austin Appleby, public
 * domain), shared by the digest and the agent's in-memory policy table.
 */

/** Mixes one 32-bit block `k` into the running hash `h`. */
export function murmurMix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The finalizer (avalanche); returns an unsigned 32-bit value. */
export function murmurFinalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
