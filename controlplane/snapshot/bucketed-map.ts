/**
 * A read-only map split into buckets by key hash, changed by copy-on-write
 * of one bucket: `with`/`without` return a new map that shares every other
 * bucket. A node holding 20,000 endpoint resources then costs one ~300-entry
 * copy per change instead of 20,000, while published snapshots stay
 * immutable.
 */
export class BucketedMap<V> implements ReadonlyMap<string, V> {
  readonly #buckets: readonly ReadonlyMap<string, V>[];
  readonly size: number;

  private constructor(buckets: readonly ReadonlyMap<string, V>[], size: number) {
    this.#buckets = buckets;
    this.size = size;
  }

  static empty<V>(buckets = 64): BucketedMap<V> {
    const empty = new Map<string, V>();
    return new BucketedMap<V>(
      Array.from({ length: buckets }, () => empty),
      0,
    );
  }

  #bucketOf(key: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
    return h % this.#buckets.length;
  }

  get(key: string): V | undefined {
    return this.#buckets[this.#bucketOf(key)]!.get(key);
  }

  has(key: string): boolean {
    return this.#buckets[this.#bucketOf(key)]!.has(key);
  }

  with(key: string, value: V): BucketedMap<V> {
    const b = this.#bucketOf(key);
    const bucket = new Map(this.#buckets[b]);
    const grew = !bucket.has(key);
    bucket.set(key, value);
    const buckets = [...this.#buckets];
    buckets[b] = bucket;
    return new BucketedMap(buckets, this.size + (grew ? 1 : 0));
  }

  /**
   * Several sets (a value) and deletes (undefined) at once: each touched
   * bucket is copied once. Returns this map when nothing changed.
   */
  withChanges(changes: Iterable<readonly [string, V | undefined]>): BucketedMap<V> {
    let buckets: ReadonlyMap<string, V>[] | undefined;
    const copied = new Set<number>();
    let size = this.size;
    for (const [key, value] of changes) {
      const b = this.#bucketOf(key);
      const current = (buckets ?? this.#buckets)[b]!;
      if (value === undefined ? !current.has(key) : current.get(key) === value) continue;
      buckets ??= [...this.#buckets];
      let bucket = current as Map<string, V>;
      if (!copied.has(b)) {
        bucket = new Map(current);
        buckets[b] = bucket;
        copied.add(b);
      }
      if (value === undefined) {
        bucket.delete(key);
        size -= 1;
      } else {
        if (!bucket.has(key)) size += 1;
        bucket.set(key, value);
      }
    }
    return buckets ? new BucketedMap(buckets, size) : this;
  }

  without(key: string): BucketedMap<V> {
    const b = this.#bucketOf(key);
    if (!this.#buckets[b]!.has(key)) return this;
    const bucket = new Map(this.#buckets[b]);
    bucket.delete(key);
    const buckets = [...this.#buckets];
    buckets[b] = bucket;
    return new BucketedMap(buckets, this.size - 1);
  }

  *entries(): MapIterator<[string, V]> {
    for (const b of this.#buckets) yield* b.entries();
  }

  *keys(): MapIterator<string> {
    for (const b of this.#buckets) yield* b.keys();
  }

  *values(): MapIterator<V> {
    for (const b of this.#buckets) yield* b.values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}
