import type { ResourceType, ResourceValue } from '../../common/index.js';
import { TYPE_IPCACHE } from '../../proto/index.js';
import { ShardBytes } from '../datapath/index.js';

export interface HeldResource {
  readonly typeUrl: ResourceType;
  readonly name: string;
  readonly version: string;
  /** an ipcache shard held as its bytes is ShardBytes, decoded on its `value` (see PackedShard) */
  readonly value: ResourceValue;
}

/**
 * A held ipcache shard kept as the bytes it arrived in (ShardBytes' one-byte
 * string): one heap object of about the payload's size, where the decoded
 * shard is ~20 — an object and a string per prefix, the array, the shard — at
 * ~4× the bytes. Every shard a revision replaces is new state the young
 * generation's collector copies twice (into the survivor space, then the old
 * generation); in a burst of pod changes that copying was the largest single
 * cost of an agent (bench/RESULTS.md). Read back as ShardBytes, not decoded:
 * a revision that replaces it compares the two shards' bytes. Immutable, so
 * the stores of one process may share it (ShardPool).
 */
export class PackedShard implements HeldResource {
  readonly name: string;
  readonly version: string;
  readonly bytes: string;

  /** `bytes`: direct ShardBytes' (another encoding is held as received, decoded) */
  constructor(name: string, version: string, bytes: string) {
    this.name = name;
    this.version = version;
    this.bytes = bytes;
  }

  get typeUrl(): ResourceType {
    return TYPE_IPCACHE;
  }

  get value(): ResourceValue {
    return new ShardBytes(this.bytes, true);
  }
}

/**
 * Held ipcache shards shared by the resource stores of one process. Every
 * agent of a benchmark worker holds the same mesh's shards, each as its own
 * copy of the same bytes; with a pool the stores hold one PackedShard per
 * shard version between them. Counted: a version no store holds any more
 * leaves the pool. An agent alone in its process has no use for one.
 */
export class ShardPool {
  readonly #byVersion = new Map<string, { shard: PackedShard; holders: number }>();

  /** How many shard versions the stores hold between them. */
  get size(): number {
    return this.#byVersion.size;
  }

  /** The shard with these bytes, counted once more. */
  acquire(name: string, version: string, bytes: string): PackedShard {
    const held = this.#byVersion.get(version);
    // Versions are content hashes; share only what is the same shard all the same.
    if (held !== undefined && held.shard.name === name && held.shard.bytes === bytes) {
      held.holders += 1;
      return held.shard;
    }
    const shard = new PackedShard(name, version, bytes);
    // Another shard under this version stays with its holders, no longer counted (release ignores it).
    this.#byVersion.set(version, { shard, holders: 1 });
    return shard;
  }

  /** One holder of `shard` fewer. */
  release(shard: PackedShard): void {
    const held = this.#byVersion.get(shard.version);
    if (held === undefined || held.shard !== shard) return;
    held.holders -= 1;
    if (held.holders === 0) this.#byVersion.delete(shard.version);
  }
}
