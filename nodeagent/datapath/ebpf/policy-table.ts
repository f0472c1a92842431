import { murmurFinalize, murmurMix } from '../../../common/index.js';

/**
 * One endpoint's policy map as the agent last read it from the kernel: keys
 * are the kernel's key bytes (as 32-bit words), values the kernel's 4-byte
 * value. An open-addressing hash table over typed arrays (linear probing,
 * backward-shift deletion): no string, object or Map entry per policy entry,
 * so mirroring 100,000 entries costs a few milliseconds and little GC.
 * Keys and values are read from and written to packed batch buffers
 * (Buffer + byte offset) directly. Not thread-safe; owned by its datapath.
 */
export class PolicyTable {
  readonly keyWords: number;
  #keys: Uint32Array;
  #values: Uint32Array;
  #used: Uint8Array;
  #mask: number;
  #size = 0;
  /** entries read back but not inserted yet (see `deferred`) */
  #pending:
    { keys: Buffer; values: Buffer; valueSize: number; count: number; next: number } | undefined;

  /** `keySize`: the kernel key's size in bytes (a multiple of 4); room for `expected` entries before growing. */
  constructor(
    readonly keySize: number,
    expected = 0,
  ) {
    if (keySize % 4 !== 0 || keySize === 0)
      throw new RangeError(`policy key of ${keySize} bytes: a multiple of 4 expected`);
    this.keyWords = keySize / 4;
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#mask = cap - 1;
    this.#keys = new Uint32Array(cap * this.keyWords);
    this.#values = new Uint32Array(cap);
    this.#used = new Uint8Array(cap);
  }

  /**
   * A table of `count` entries packed back to back (keys of `keySize` bytes
   * in `keys`, values as their first 4 bytes of `valueSize` in `values`, as a
   * batch lookup returns them), inserted on first use or `materialize()`: an
   * apply reads a policy map back and hashes it before its ACK, and builds
   * the table after. The buffers are the table's from now on.
   */
  static deferred(
    keySize: number,
    keys: Buffer,
    values: Buffer,
    valueSize: number,
    count: number,
  ): PolicyTable {
    const t = new PolicyTable(keySize);
    t.#pending = { keys, values, valueSize, count, next: 0 };
    return t;
  }

  /**
   * Inserts the entries of `deferred` now, or the next `limit` of them (a
   * caller spreading the work over turns of the event loop); true once all
   * are in. Every other method inserts the rest first. Idempotent.
   */
  materialize(limit = Infinity): boolean {
    const p = this.#pending;
    if (p === undefined) return true;
    // set() below finds nothing pending.
    this.#pending = undefined;
    if (p.next === 0) {
      let cap = this.#used.length;
      while (cap < p.count * 2) cap *= 2;
      if (cap !== this.#used.length) {
        this.#mask = cap - 1;
        this.#keys = new Uint32Array(cap * this.keyWords);
        this.#values = new Uint32Array(cap);
        this.#used = new Uint8Array(cap);
      }
    }
    const end = Math.min(p.count, p.next + limit);
    for (let i = p.next; i < end; i++)
      this.set(p.keys, i * this.keySize, p.values.readUInt32LE(i * p.valueSize));
    if (end === p.count) return true;
    p.next = end;
    this.#pending = p;
    return false;
  }

  get size(): number {
    this.materialize();
    return this.#size;
  }

  /** The value held for the key at `buf[off..]`, or -1. */
  get(buf: Buffer, off: number): number {
    this.materialize();
    const i = this.#find(buf, off);
    return i < 0 ? -1 : this.#values[i]!;
  }

  has(buf: Buffer, off: number): boolean {
    this.materialize();
    return this.#find(buf, off) >= 0;
  }

  /** Holds `value` for the key at `buf[off..]`; returns the value it replaced, or -1. */
  set(buf: Buffer, off: number, value: number): number {
    this.materialize();
    if ((this.#size + 1) * 2 > this.#used.length) this.#grow();
    const w = this.keyWords;
    let i = hashKey(buf, off, w) & this.#mask;
    for (;;) {
      if (this.#used[i] === 0) {
        for (let j = 0; j < w; j++) this.#keys[i * w + j] = buf.readUInt32LE(off + j * 4);
        this.#values[i] = value >>> 0;
        this.#used[i] = 1;
        this.#size += 1;
        return -1;
      }
      if (this.#equals(i, buf, off)) {
        const old = this.#values[i]!;
        this.#values[i] = value >>> 0;
        return old;
      }
      i = (i + 1) & this.#mask;
    }
  }

  /** Forgets the key at `buf[off..]`; returns the value it held, or -1. */
  delete(buf: Buffer, off: number): number {
    this.materialize();
    let i = this.#find(buf, off);
    if (i < 0) return -1;
    const old = this.#values[i]!;
    const w = this.keyWords;
    // Backward shift: move later entries of the probe run into the gap so lookups need no tombstones.
    let j = i;
    for (;;) {
      j = (j + 1) & this.#mask;
      if (this.#used[j] === 0) break;
      const home = this.#home(j);
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (between) continue;
      this.#keys.copyWithin(i * w, j * w, j * w + w);
      this.#values[i] = this.#values[j]!;
      i = j;
    }
    this.#used[i] = 0;
    this.#size -= 1;
    return old;
  }

  /** Calls `f` for every entry with its key written into `key` (keySize bytes, reused) and its value. */
  forEach(f: (key: Buffer, value: number) => void): void {
    this.materialize();
    const w = this.keyWords;
    const key = Buffer.alloc(this.keySize);
    for (let i = 0; i < this.#used.length; i++) {
      if (this.#used[i] === 0) continue;
      for (let j = 0; j < w; j++) key.writeUInt32LE(this.#keys[i * w + j]!, j * 4);
      f(key, this.#values[i]!);
    }
  }

  #find(buf: Buffer, off: number): number {
    let i = hashKey(buf, off, this.keyWords) & this.#mask;
    for (;;) {
      if (this.#used[i] === 0) return -1;
      if (this.#equals(i, buf, off)) return i;
      i = (i + 1) & this.#mask;
    }
  }

  #equals(i: number, buf: Buffer, off: number): boolean {
    const w = this.keyWords;
    for (let j = 0; j < w; j++)
      if (this.#keys[i * w + j] !== buf.readUInt32LE(off + j * 4)) return false;
    return true;
  }

  #home(i: number): number {
    const w = this.keyWords;
    let h = 0x811c9dc5;
    for (let j = 0; j < w; j++) h = murmurMix(h, this.#keys[i * w + j]!);
    return murmurFinalize(h) & this.#mask;
  }

  #grow(): void {
    const w = this.keyWords;
    const keys = this.#keys;
    const values = this.#values;
    const used = this.#used;
    const cap = used.length * 2;
    this.#mask = cap - 1;
    this.#keys = new Uint32Array(cap * w);
    this.#values = new Uint32Array(cap);
    this.#used = new Uint8Array(cap);
    for (let i = 0; i < used.length; i++) {
      if (used[i] === 0) continue;
      let h = 0x811c9dc5;
      for (let j = 0; j < w; j++) h = murmurMix(h, keys[i * w + j]!);
      let k = murmurFinalize(h) & this.#mask;
      while (this.#used[k] !== 0) k = (k + 1) & this.#mask;
      this.#keys.set(keys.subarray(i * w, i * w + w), k * w);
      this.#values[k] = values[i]!;
      this.#used[k] = 1;
    }
  }
}

function hashKey(buf: Buffer, off: number, words: number): number {
  let h = 0x811c9dc5;
  for (let j = 0; j < words; j++) h = murmurMix(h, buf.readUInt32LE(off + j * 4));
  return murmurFinalize(h);
}
