import type { Verdict } from '../../proto/index.js';

/** allow, deny, audit: the three kinds of contribution a key is reference-counted by */
export const ALLOW = 0;
export const DENY = 1;
export const AUDIT = 2;
export type CountSlot = typeof ALLOW | typeof DENY | typeof AUDIT;

/** One policy map key, unpacked. */
export interface EntryKey {
  direction: number;
  identity: number;
  protocol: number;
  portLow: number;
  portHigh: number;
}

/** How counts become a verdict (0 = no entry); the endpoint's enforcement mode decides. */
export interface VerdictRules {
  verdictOf(k: EntryKey, allow: number, deny: number, audit: number): number;
}

const EMPTY = 0;
const TOMBSTONE = 1;
/** set in every occupied slot's third key word, so a key is never EMPTY or TOMBSTONE */
const OCCUPIED = 1 << 16;
const MIN_CAPACITY = 16;
/** never written: a table with them has no slots (`#mask` -1), so it grows first */
const NO_WORDS = new Uint32Array(0);
const NO_BYTES = new Uint8Array(0);

function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b ^ 0x7f4a7c15, 0xc2b2ae35) ^ c;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * One endpoint's policy map with the reference counts behind each entry, as
 * flat typed arrays (open addressing, linear probing, tombstones). The full
 * compile holds millions of entries: as JS objects with string keys their
 * allocation and the GC marking them dominated compile time and made
 * incremental latency unpredictable, while a few typed arrays per endpoint
 * are nothing to the GC. A key is three uint32 words: identity,
 * `portLow << 16 | portHigh`, and `OCCUPIED | direction << 8 | protocol`.
 * Keys whose counts change are marked dirty; `settle` recomputes their
 * verdict. Not safe for concurrent use.
 */
export class EntryTable {
  // Most endpoints have no entries: they share empty arrays until their first key.
  #keys = NO_WORDS;
  #counts = NO_WORDS;
  #verdicts = NO_BYTES;
  #dirtyFlags = NO_BYTES;
  /** slots marked dirty since the last settle (indices into the current arrays) */
  #dirty: number[] = [];
  #mask = -1;
  /** occupied slots plus tombstones: what the load factor is checked against */
  #filled = 0;
  #occupied = 0;
  /** slots with a verdict: the entries of the map */
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Makes room for `extra` more keys at once, instead of growing step by step while adding them. */
  reserve(extra: number): void {
    if ((this.#filled + extra) * 4 > (this.#mask + 1) * 3) this.#rehash(extra);
  }

  /** Adds `delta` (±1) to one kind of count of a key and marks it dirty. */
  count(k: EntryKey, slot: CountSlot, delta: number): void {
    const i = this.#slotFor(k);
    const at = i * 3 + slot;
    const next = this.#counts[at]! + delta;
    if (next < 0) throw new Error('policy entry count below zero (engine invariant broken)');
    this.#counts[at] = next;
    this.#markDirty(i);
  }

  /** Marks a key dirty without changing its counts (entries that exist by mode, not by rule). */
  touch(k: EntryKey): void {
    this.#markDirty(this.#slotFor(k));
  }

  /**
   * Recomputes the verdict of every dirty key with `verdictOf` (0 = no entry)
   * and reports each one whose verdict changed, with the value it had before.
   * Keys left without counts and verdict are removed.
   */
  settle(rules: VerdictRules, changed?: (k: EntryKey, before: Verdict | undefined) => void): void {
    const dirty = this.#dirty;
    const k: EntryKey = { direction: 0, identity: 0, protocol: 0, portLow: 0, portHigh: 0 };
    for (const i of dirty) {
      this.#dirtyFlags[i] = 0;
      this.#read(i, k);
      const c = i * 3;
      const allow = this.#counts[c]!;
      const deny = this.#counts[c + 1]!;
      const audit = this.#counts[c + 2]!;
      const prev = this.#verdicts[i]!;
      const next = rules.verdictOf(k, allow, deny, audit);
      if (next !== prev) {
        changed?.(k, prev === 0 ? undefined : prev);
        this.#verdicts[i] = next;
        this.#size += (next === 0 ? 0 : 1) - (prev === 0 ? 0 : 1);
      }
      if (next === 0 && allow === 0 && deny === 0 && audit === 0) {
        this.#keys[i * 3 + 2] = TOMBSTONE;
        this.#occupied -= 1;
      }
    }
    // Reused: incremental changes settle often and should not allocate.
    dirty.length = 0;
  }

  /** The verdict of a key, or undefined when the map has no entry for it. */
  get(k: EntryKey): Verdict | undefined {
    const i = this.#find(k);
    const v = i < 0 ? 0 : this.#verdicts[i]!;
    return v === 0 ? undefined : v;
  }

  /** Every entry of the map (key object reused between calls: copy what you keep). */
  forEach(fn: (k: EntryKey, verdict: Verdict) => void): void {
    const k: EntryKey = { direction: 0, identity: 0, protocol: 0, portLow: 0, portHigh: 0 };
    for (let i = 0; i < this.#verdicts.length; i++) {
      const v = this.#verdicts[i]!;
      if (v === 0 || this.#keys[i * 3 + 2]! < OCCUPIED) continue;
      this.#read(i, k);
      fn(k, v);
    }
  }

  #read(i: number, k: EntryKey): void {
    const w = i * 3;
    const ports = this.#keys[w + 1]!;
    const meta = this.#keys[w + 2]!;
    k.identity = this.#keys[w]!;
    k.portLow = ports >>> 16;
    k.portHigh = ports & 0xffff;
    k.direction = (meta >>> 8) & 0xff;
    k.protocol = meta & 0xff;
  }

  #markDirty(i: number): void {
    if (this.#dirtyFlags[i] !== 0) return;
    this.#dirtyFlags[i] = 1;
    this.#dirty.push(i);
  }

  #find(k: EntryKey): number {
    if (this.#mask < 0) return -1;
    checkKey(k);
    const a = k.identity >>> 0;
    const b = ((k.portLow << 16) | k.portHigh) >>> 0;
    const c = OCCUPIED | (k.direction << 8) | k.protocol;
    for (let i = hash(a, b, c) & this.#mask; ; i = (i + 1) & this.#mask) {
      const w = i * 3;
      const meta = this.#keys[w + 2]!;
      if (meta === EMPTY) return -1;
      if (meta === c && this.#keys[w] === a && this.#keys[w + 1] === b) return i;
    }
  }

  /** The slot of a key, inserting it (with zero counts) when absent. */
  #slotFor(k: EntryKey): number {
    if ((this.#filled + 1) * 4 > (this.#mask + 1) * 3) this.#rehash(1);
    checkKey(k);
    const a = k.identity >>> 0;
    const b = ((k.portLow << 16) | k.portHigh) >>> 0;
    const c = OCCUPIED | (k.direction << 8) | k.protocol;
    let free = -1;
    for (let i = hash(a, b, c) & this.#mask; ; i = (i + 1) & this.#mask) {
      const w = i * 3;
      const meta = this.#keys[w + 2]!;
      if (meta === TOMBSTONE) {
        if (free < 0) free = i;
        continue;
      }
      if (meta === EMPTY) {
        if (free < 0) {
          free = i;
          this.#filled += 1;
        }
        break;
      }
      if (meta === c && this.#keys[w] === a && this.#keys[w + 1] === b) return i;
    }
    const w = free * 3;
    this.#keys[w] = a;
    this.#keys[w + 1] = b;
    this.#keys[w + 2] = c;
    this.#counts.fill(0, w, w + 3);
    this.#verdicts[free] = 0;
    this.#dirtyFlags[free] = 0;
    this.#occupied += 1;
    return free;
  }

  /** Grows (or just drops tombstones), keeping dirty marks with their keys. */
  #rehash(extra: number): void {
    let capacity = MIN_CAPACITY;
    while ((this.#occupied + extra) * 2 > capacity) capacity *= 2;
    const keys = this.#keys;
    const counts = this.#counts;
    const verdicts = this.#verdicts;
    const dirtyFlags = this.#dirtyFlags;
    this.#keys = new Uint32Array(capacity * 3);
    this.#counts = new Uint32Array(capacity * 3);
    this.#verdicts = new Uint8Array(capacity);
    this.#dirtyFlags = new Uint8Array(capacity);
    this.#dirty = [];
    this.#mask = capacity - 1;
    this.#filled = this.#occupied;
    for (let j = 0; j < verdicts.length; j++) {
      const w = j * 3;
      const c = keys[w + 2]!;
      if (c < OCCUPIED) continue;
      const a = keys[w]!;
      const b = keys[w + 1]!;
      let i = hash(a, b, c) & this.#mask;
      while (this.#keys[i * 3 + 2] !== EMPTY) i = (i + 1) & this.#mask;
      for (let x = 0; x < 3; x++) {
        this.#keys[i * 3 + x] = keys[w + x]!;
        this.#counts[i * 3 + x] = counts[w + x]!;
      }
      this.#verdicts[i] = verdicts[j]!;
      if (dirtyFlags[j] !== 0) {
        this.#dirtyFlags[i] = 1;
        this.#dirty.push(i);
      }
    }
  }
}

/** The packing above holds these widths; anything wider would alias another key. */
function checkKey(k: EntryKey): void {
  if (
    !(k.direction >= 0 && k.direction <= 0xff) ||
    !(k.protocol >= 0 && k.protocol <= 0xff) ||
    !(k.portLow >= 0 && k.portLow <= 0xffff) ||
    !(k.portHigh >= 0 && k.portHigh <= 0xffff) ||
    !(k.identity >= 0 && k.identity <= 0xffffffff)
  )
    throw new RangeError(`policy map key out of range: ${JSON.stringify(k)}`);
}
