import type { PolicyKey } from './types.js';

/**
 * Policy keys to non-negative numbers (an index into the caller's array),
 * each key held as two numbers (identity; direction, protocol and ports
 * packed into 48 bits) in typed arrays: an open-addressing table, no string
 * and no object per key — the checks' duplicate detection and the
 * entry-level diff of policy maps of up to 100,000 entries. Only keys whose
 * fields are integers in their field's range can be packed (`packable`);
 * two packable keys are equal exactly when their `policyKeyId` strings are.
 */
export class PolicyKeyIndex {
  readonly #hi: Float64Array;
  readonly #lo: Float64Array;
  /** value + 1 per slot; 0 = empty */
  readonly #values: Float64Array;
  readonly #mask: number;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#hi = new Float64Array(cap);
    this.#lo = new Float64Array(cap);
    this.#values = new Float64Array(cap);
    this.#mask = cap - 1;
  }

  /** Maps packable `k` to `value` (≥ 0); returns the value it had, or -1. */
  set(k: PolicyKey, value: number): number {
    const hi = k.identity;
    const lo = packLow(k);
    let i = slotOf(k, this.#mask);
    while (this.#values[i] !== 0) {
      if (this.#hi[i] === hi && this.#lo[i] === lo) {
        const before = this.#values[i]! - 1;
        this.#values[i] = value + 1;
        return before;
      }
      i = (i + 1) & this.#mask;
    }
    this.#hi[i] = hi;
    this.#lo[i] = lo;
    this.#values[i] = value + 1;
    return -1;
  }

  /** The value of packable `k`, or -1. */
  get(k: PolicyKey): number {
    const hi = k.identity;
    const lo = packLow(k);
    let i = slotOf(k, this.#mask);
    while (this.#values[i] !== 0) {
      if (this.#hi[i] === hi && this.#lo[i] === lo) return this.#values[i]! - 1;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }
}

/** direction, protocol and both ports in 48 bits (exact in a double) */
function packLow(k: PolicyKey): number {
  return ((k.direction * 256 + k.protocol) * 65536 + k.portLow) * 65536 + k.portHigh;
}

function slotOf(k: PolicyKey, mask: number): number {
  let h = Math.imul(k.identity ^ Math.imul(k.portLow | (k.portHigh << 16), 0x9e3779b1), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ (k.direction << 8) ^ k.protocol, 0xc2b2ae35);
  return (h ^ (h >>> 13)) & mask;
}

const inRange = (n: number, max: number): boolean => Number.isInteger(n) && n >= 0 && n <= max;

/** Whether `PolicyKeyIndex` can hold `k` (every field an integer in its range). */
export function packable(k: PolicyKey): boolean {
  return (
    inRange(k.identity, 0xffffffff) &&
    inRange(k.direction, 255) &&
    inRange(k.protocol, 255) &&
    inRange(k.portLow, 65535) &&
    inRange(k.portHigh, 65535)
  );
}
