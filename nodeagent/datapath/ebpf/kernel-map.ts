import { BPF_ANY, BpfError, check, type Libbpf } from './libbpf.js';
import { Packed } from './packed.js';

/** entries per walk call of a map without batch lookups (`dumpAsync`) */
const WALK_CHUNK = 65_536;
const ENOENT = 2;
const EINVAL = 22;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;

/**
 * One kernel map by file descriptor: element operations on Buffers and batch
 * operations on packed records (one Buffer of keys, one of values), of the
 * map's key and value sizes. Batch calls fall back to one call per
 * element where the map type has no batch support (LPM trie).
 * Does not own the fd unless `owned` (then `close()` closes it).
 */
export class KernelMap {
  #batch: boolean;

  constructor(
    private readonly lib: Libbpf,
    readonly name: string,
    readonly fd: number,
    readonly keySize: number,
    readonly valueSize: number,
    opts: { batch: boolean; owned?: boolean; maxEntries?: number } = { batch: true },
  ) {
    this.#batch = opts.batch;
    this.owned = opts.owned ?? false;
    this.#chunk = Math.max(1, opts.maxEntries ?? 4096);
    this.#capacity = opts.maxEntries;
  }

  readonly owned: boolean;
  /** the map's max_entries, where known */
  readonly #capacity: number | undefined;
  /** entries per batch lookup: the map's capacity where known (one call reads it all) */
  readonly #chunk: number;

  lookup(key: Buffer): Buffer | undefined {
    const value = Buffer.alloc(this.valueSize);
    const ret = this.lib.lookup(this.fd, key, value);
    if (ret === -ENOENT) return undefined;
    check(`lookup in ${this.name}`, ret);
    return value;
  }

  update(key: Buffer, value: Buffer): void {
    check(`update of ${this.name}`, this.lib.update(this.fd, key, value, BPF_ANY));
  }

  /**
   * `update` on a koffi worker thread (the event loop runs meanwhile): a
   * map-in-map write waits for an RCU grace period before it returns.
   */
  async updateAsync(key: Buffer, value: Buffer): Promise<void> {
    check(
      `update of ${this.name}`,
      await this.lib.callAsync(this.lib.update, this.fd, key, value, BPF_ANY),
    );
  }

  /** Deletes a key; a missing key is not an error. */
  delete(key: Buffer): void {
    const ret = this.lib.remove(this.fd, key);
    if (ret !== -ENOENT) check(`delete from ${this.name}`, ret);
  }

  /** Writes every pair, in one batch call where the map supports it. */
  updateMany(keys: Packed, values: Packed): void {
    const n = keys.count;
    if (n === 0) return;
    if (this.#batch && n > 1) {
      const ret = this.lib.updateBatch(this.fd, ...this.#updateArgs(keys, values));
      if (this.#batchWritten(ret)) return;
    }
    for (let i = 0; i < n; i++) this.update(keys.at(i), values.at(i));
  }

  /**
   * `updateMany` with the batch call on a koffi worker thread (the event loop
   * runs meanwhile; `keys` and `values` must not change until it settles).
   */
  async updateManyAsync(keys: Packed, values: Packed): Promise<void> {
    const n = keys.count;
    if (n === 0) return;
    if (this.#batch && n > 1) {
      const ret = await this.lib.callAsync(
        this.lib.updateBatch,
        this.fd,
        ...this.#updateArgs(keys, values),
      );
      if (this.#batchWritten(ret)) return;
    }
    await this.lib.updateEachAsync(
      this.name,
      this.fd,
      this.keySize,
      this.valueSize,
      keys.bytes(),
      values.bytes(),
      n,
      BPF_ANY,
    );
  }

  /** `bpf_map_update_batch`'s arguments after the fd. */
  #updateArgs(keys: Packed, values: Packed): [Buffer, Buffer, number[], Buffer] {
    return [keys.bytes(), values.bytes(), [keys.count], this.lib.batchOpts()];
  }

  /**
   * Whether a batch update that returned `ret` wrote everything; false when
   * the map type has no batch update (remembered; nothing was written, the
   * caller writes element by element). Any other failure throws.
   */
  #batchWritten(ret: number): boolean {
    if (ret >= 0) return true;
    if (!isUnsupported(ret)) throw new BpfError(`batch update of ${this.name}`, -ret);
    this.#batch = false;
    return false;
  }

  /** Deletes every key that is present (callers pass keys they know are held). */
  deleteMany(keys: Packed): void {
    const n = keys.count;
    if (n === 0) return;
    if (this.#batch && n > 1) {
      const ret = this.lib.deleteBatch(this.fd, ...this.#deleteArgs(keys));
      if (this.#batchDeleted(ret)) return;
    }
    for (let i = 0; i < n; i++) this.delete(keys.at(i));
  }

  /** `deleteMany` with the kernel calls on a koffi worker thread (`keys` must not change until it settles). */
  async deleteManyAsync(keys: Packed): Promise<void> {
    const n = keys.count;
    if (n === 0) return;
    if (this.#batch && n > 1) {
      const ret = await this.lib.callAsync(
        this.lib.deleteBatch,
        this.fd,
        ...this.#deleteArgs(keys),
      );
      if (this.#batchDeleted(ret)) return;
    }
    await this.lib.deleteEachAsync(this.name, this.fd, this.keySize, keys.bytes(), n);
  }

  /** `bpf_map_delete_batch`'s arguments after the fd. */
  #deleteArgs(keys: Packed): [Buffer, number[], Buffer] {
    return [keys.bytes(), [keys.count], this.lib.batchOpts()];
  }

  /**
   * Whether a batch delete that returned `ret` deleted everything; false
   * when the caller must finish key by key: the map type has no batch
   * delete (remembered), or the batch stopped at a missing key (deleting
   * twice is harmless). Any other failure throws.
   */
  #batchDeleted(ret: number): boolean {
    if (ret >= 0) return true;
    if (isUnsupported(ret)) this.#batch = false;
    else if (ret !== -ENOENT) throw new BpfError(`batch delete from ${this.name}`, -ret);
    return false;
  }

  /**
   * Looks every key up, one element call each, on a koffi worker thread:
   * each key's value, or undefined where the map does not hold it.
   */
  async lookupManyAsync(keys: Packed): Promise<(Buffer | undefined)[]> {
    const n = keys.count;
    const values = Buffer.alloc(Math.max(1, n) * this.valueSize);
    const found = Buffer.alloc(Math.max(1, n));
    if (n > 0)
      await this.lib.lookupEachAsync(
        this.name,
        this.fd,
        this.keySize,
        this.valueSize,
        keys.bytes(),
        values,
        found,
        n,
      );
    const out: (Buffer | undefined)[] = new Array<Buffer | undefined>(n);
    for (let i = 0; i < n; i++)
      out[i] =
        found[i] === 1 ? values.subarray(i * this.valueSize, (i + 1) * this.valueSize) : undefined;
    return out;
  }

  /** Every key (get_next_key walk). */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const ret = this.lib.nextKey(this.fd, prev, next);
      if (ret === -ENOENT) return out;
      check(`iteration of ${this.name}`, ret);
      out.push(next);
      prev = next;
    }
  }

  /** Every entry. Entries deleted during the walk are skipped. */
  dump(): [Buffer, Buffer][] {
    const { keys, values } = this.dumpPacked();
    const out: [Buffer, Buffer][] = [];
    for (let i = 0; i < keys.count; i++) {
      out.push([Buffer.from(keys.at(i)), Buffer.from(values.at(i))]);
    }
    return out;
  }

  /** Every entry as packed keys and values (batch lookups where supported: a few syscalls). */
  dumpPacked(): { keys: Packed; values: Packed } {
    if (this.#batch) {
      const got = this.#dumpBatch();
      if (got !== undefined) return got;
    }
    const keys = new Packed(this.keySize);
    const values = new Packed(this.valueSize);
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v === undefined) continue;
      keys.push(k);
      values.push(v);
    }
    return { keys, values };
  }

  /**
   * `dumpPacked` with the batch lookups on a koffi worker thread (one call
   * where the map's capacity is known, or `batch` entries per call); where
   * the map type has no batch lookup, the element-wise walk, also on a
   * worker thread (`Libbpf.walkAsync`, WALK_CHUNK entries per call; not for
   * per-CPU maps). `onBatch` receives each call's records [from, to)
   * on the event loop thread while the next call runs (the records before
   * `to` no longer change). Settles only after every call it made.
   */
  async dumpAsync(
    opts: { batch?: number; onBatch?: (got: DumpedRecords, from: number, to: number) => void } = {},
  ): Promise<DumpedRecords> {
    if (this.#batch) {
      const got = await this.#dumpBatchAsync(opts.batch ?? this.#chunk, opts.onBatch);
      if (got !== undefined) return got;
    }
    const got = await this.#walkAsync();
    opts.onBatch?.(got, 0, got.keys.count);
    return got;
  }

  /**
   * Every entry by get_next_key walks on a worker thread, WALK_CHUNK at a
   * time, each after the last key of the one before. Stops at the map's
   * capacity where known (a map rewritten under the walk could repeat keys).
   */
  async #walkAsync(): Promise<DumpedRecords> {
    const chunk = Math.min(WALK_CHUNK, this.#capacity ?? WALK_CHUNK);
    const keys = new Packed(this.keySize, chunk);
    const values = new Packed(this.valueSize, chunk);
    for (;;) {
      const after = keys.count === 0 ? null : Buffer.from(keys.at(keys.count - 1));
      const n = await this.lib.walkAsync(
        this.fd,
        this.keySize,
        this.valueSize,
        after,
        keys.room(chunk),
        values.room(chunk),
        chunk,
      );
      keys.added(n);
      values.added(n);
      if (n < chunk || keys.count >= (this.#capacity ?? Infinity)) return { keys, values };
    }
  }

  async #dumpBatchAsync(
    batch: number,
    onBatch: ((got: DumpedRecords, from: number, to: number) => void) | undefined,
  ): Promise<DumpedRecords | undefined> {
    const dump = new BatchDump(this.keySize, this.valueSize, this.#chunk, Math.max(1, batch));
    const call = (): Promise<number> =>
      this.lib.callAsync(this.lib.lookupBatch, this.fd, ...dump.args(this.lib));
    let calling = call();
    let from = 0;
    for (;;) {
      const next = dump.after(await calling, this.name);
      if (next === 'unsupported') this.#batch = false;
      // The kernel writes straight into the packed buffers' free room: the next call's
      // records land after these, which onBatch reads meanwhile.
      if (next === 'more') calling = call();
      try {
        const to = dump.keys.count;
        if (next !== 'unsupported' && to > from) onBatch?.(dump, from, to);
        from = to;
      } catch (err) {
        if (next === 'more') await calling.catch(() => undefined);
        throw err;
      }
      if (next !== 'more') return dump.result(next);
    }
  }

  #dumpBatch(): { keys: Packed; values: Packed } | undefined {
    const dump = new BatchDump(this.keySize, this.valueSize, this.#chunk);
    for (;;) {
      const ret = this.lib.lookupBatch(this.fd, ...dump.args(this.lib));
      const next = dump.after(ret, this.name);
      if (next === 'unsupported') this.#batch = false;
      if (next !== 'more') return dump.result(next);
    }
  }

  close(): void {
    if (this.owned) this.lib.close(this.fd);
  }
}

/** A map's records as batch lookups read them: packed keys and values, record i of each together. */
export interface DumpedRecords {
  keys: Packed;
  values: Packed;
}

function isUnsupported(ret: number): boolean {
  return ret === -EINVAL || ret === -EOPNOTSUPP || ret === -ENOTSUPP;
}

/**
 * One whole-map dump by `bpf_map_lookup_batch` calls, `chunk` entries at a
 * time into packed buffers: the arguments of the next call and what a call's
 * return value means. The same for a call on this thread and on a koffi
 * worker thread.
 */
class BatchDump {
  readonly keys: Packed;
  readonly values: Packed;
  readonly #chunk: number;
  /** The batch token is a bucket index for hash maps, a key for others: room for either. */
  readonly #outBatch: Buffer;
  #inBatch: Buffer | null = null;
  #count = [0];

  /** `capacity` records preallocated (the map's size where known), `chunk` asked for per call. */
  constructor(keySize: number, valueSize: number, capacity: number, chunk = capacity) {
    this.#chunk = chunk;
    // Room for the last call's `chunk` after a full map's records: the buffers never grow.
    const room = chunk < capacity ? capacity + chunk : chunk;
    this.keys = new Packed(keySize, room);
    this.values = new Packed(valueSize, room);
    this.#outBatch = Buffer.alloc(Math.max(8, keySize));
  }

  /** The arguments after the map's fd: in/out batch tokens, key and value room, count, opts. */
  args(lib: Libbpf): [Buffer | null, Buffer, Buffer, Buffer, number[], Buffer] {
    this.#count = [this.#chunk];
    return [
      this.#inBatch,
      this.#outBatch,
      this.keys.room(this.#chunk),
      this.values.room(this.#chunk),
      this.#count,
      lib.batchOpts(),
    ];
  }

  /** After a call that returned `ret`: more to read, done, or no batch lookup for this map type. */
  after(ret: number, name: string): 'more' | 'done' | 'unsupported' {
    if (ret < 0 && ret !== -ENOENT) {
      if (isUnsupported(ret) && this.keys.count === 0 && this.#inBatch === null)
        return 'unsupported';
      throw new BpfError(`batch lookup in ${name}`, -ret);
    }
    const n = this.#count[0] ?? 0;
    this.keys.added(n);
    this.values.added(n);
    if (ret === -ENOENT) return 'done';
    this.#inBatch = Buffer.from(this.#outBatch);
    return 'more';
  }

  result(state: 'done' | 'unsupported'): { keys: Packed; values: Packed } | undefined {
    return state === 'done' ? { keys: this.keys, values: this.values } : undefined;
  }
}
