/**
 * Fixed-size records packed back to back in one growing Buffer: the keys or
 * values of one batch map call, written in place (no Buffer per entry).
 */
export class Packed {
  #buf: Buffer;
  #count = 0;

  constructor(
    readonly size: number,
    capacity = 16,
  ) {
    this.#buf = Buffer.alloc(size * Math.max(1, capacity));
  }

  static of(size: number, records: readonly Buffer[]): Packed {
    const p = new Packed(size, records.length);
    for (const r of records) p.push(r);
    return p;
  }

  get count(): number {
    return this.#count;
  }

  /**
   * Appends a zeroed record and returns its offset in `buffer` (read
   * `buffer` after calling: growing replaces it).
   */
  next(): number {
    const off = this.#count * this.size;
    if (off + this.size > this.#buf.length) {
      const grown = Buffer.alloc(Math.max(this.#buf.length * 2, off + this.size));
      this.#buf.copy(grown, 0, 0, off);
      this.#buf = grown;
    }
    this.#count += 1;
    return off;
  }

  get buffer(): Buffer {
    return this.#buf;
  }

  push(record: Buffer): void {
    if (record.length !== this.size) {
      throw new RangeError(`record of ${record.length} bytes, expected ${this.size}`);
    }
    const off = this.next(); // may grow the buffer: take it afterwards
    record.copy(this.#buf, off);
  }

  /** Appends `n` records copied from `from` (n × size bytes). */
  pushMany(from: Buffer, n: number): void {
    if (n <= 0) return;
    const need = (this.#count + n) * this.size;
    if (need > this.#buf.length) {
      const grown = Buffer.alloc(Math.max(this.#buf.length * 2, need));
      this.#buf.copy(grown, 0, 0, this.#count * this.size);
      this.#buf = grown;
    }
    from.copy(this.#buf, this.#count * this.size, 0, n * this.size);
    this.#count += n;
  }

  /**
   * Room for `n` more records after the held ones (a view, to be filled by a
   * kernel call); then `added(k)` counts the `k` records written there.
   */
  room(n: number): Buffer {
    const at = this.#count * this.size;
    const need = at + n * this.size;
    if (need > this.#buf.length) {
      const grown = Buffer.alloc(Math.max(this.#buf.length * 2, need));
      this.#buf.copy(grown, 0, 0, at);
      this.#buf = grown;
    }
    return this.#buf.subarray(at, need);
  }

  /** Counts `k` records written into the last `room()`. */
  added(k: number): void {
    if ((this.#count + k) * this.size > this.#buf.length)
      throw new RangeError(`${k} records do not fit`);
    this.#count += k;
  }

  /** Record i (a view: copy it to keep it past later writes). */
  at(i: number): Buffer {
    return this.#buf.subarray(i * this.size, (i + 1) * this.size);
  }

  /**
   * Records [from, to) as a Packed sharing this one's bytes (no copy): for
   * writing a large map a batch at a time. Valid while this one is not grown.
   */
  range(from: number, to: number): Packed {
    const view = new Packed(this.size, 1);
    view.#buf = this.#buf.subarray(from * this.size, to * this.size);
    view.#count = to - from;
    return view;
  }

  /** All records, one view. */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#count * this.size);
  }
}
