import type { PolicyKey } from './types.js';

/**
 * A set of policy keys held as two numbers each (identity; direction,
 * protocol and ports packed into 48 bits) in typed arrays: the checks'
 * duplicate detection without building a string per key. Only keys whose
 * fields are integers in their field's range can be packed (`packable`);
 * two packable keys are equal exactly when their `policyKeyId` strings are.
 */
export class PolicyKeySet {
  readonly #hi: Float64Array;
  readonly #lo: Float64Array;
  readonly #used: Uint8Array;
  readonly #mask: number;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#hi = new Float64Array(cap);
    this.#lo = new Float64Array(cap);
    this.#used = new Uint8Array(cap);
    this.#mask = cap - 1;
  }

  /** Adds a packable key; false when it was in the set already. */
  add(k: PolicyKey): boolean {
    const hi = k.identity;
    const lo = ((k.direction * 256 + k.protocol) * 65536 + k.portLow) * 65536 + k.portHigh;
    let h = Math.imul(hi ^ Math.imul(k.portLow | (k.portHigh << 16), 0x9e3779b1), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 15) ^ (k.direction << 8) ^ k.protocol, 0xc2b2ae35);
    let i = (h ^ (h >>> 13)) & this.#mask;
    while (this.#used[i] === 1) {
      if (this.#hi[i] === hi && this.#lo[i] === lo) return false;
      i = (i + 1) & this.#mask;
    }
    this.#used[i] = 1;
    this.#hi[i] = hi;
    this.#lo[i] = lo;
    return true;
  }
}

const inRange = (n: number, max: number): boolean => Number.isInteger(n) && n >= 0 && n <= max;

/** Whether `PolicyKeySet` can hold `k` (every field an integer in its range). */
export function packable(k: PolicyKey): boolean {
  return (
    inRange(k.identity, 0xffffffff) &&
    inRange(k.direction, 255) &&
    inRange(k.protocol, 255) &&
    inRange(k.portLow, 65535) &&
    inRange(k.portHigh, 65535)
  );
}
