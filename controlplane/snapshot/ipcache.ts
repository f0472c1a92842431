import { TYPE_IPCACHE } from '../../proto/index.js';
import { encodeResource, resourceKey, type EncodedResource } from '../../common/index.js';

/** FNV-1a over the prefix text: cheap, stable across processes. */
export function shardOf(prefix: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < prefix.length; i++) {
    h ^= prefix.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}

export function hostPrefix(ip: string): string {
  return ip.includes(':') ? `${ip}/128` : `${ip}/32`;
}

/**
 * An endpoint change re-encodes its whole shard, so the cost per change is
 * the shard's size: 60,000 endpoints in 1,024 shards is ~60 entries a shard
 * (with 256 shards, ~235 entries were re-encoded per changed pod IP).
 * More shards cost each node a few bytes per non-empty shard it holds.
 */
export const DEFAULT_IPCACHE_SHARDS = 1024;

export function ipcacheResourceName(shard: number): string {
  return `ipcache/${shard}`;
}

/**
 * The mesh-wide ipcache (prefix -> identity), sharded so that an endpoint
 * change re-encodes and re-sends one shard, not the whole table. Shards are
 * encoded once per revision and the same bytes go to every node.
 */
export class ShardedIpcache {
  readonly shards: number;
  readonly #entries: Map<string, number>[];
  readonly #encoded: (EncodedResource | undefined)[];
  readonly #dirty = new Set<number>();
  /** resource key -> encoded shard, non-empty shards only; replaced (never mutated) by a flush that changes it */
  #published: ReadonlyMap<string, EncodedResource> = new Map();

  constructor(shards = DEFAULT_IPCACHE_SHARDS) {
    this.shards = shards;
    this.#entries = Array.from({ length: shards }, () => new Map<string, number>());
    this.#encoded = Array.from({ length: shards }, () => undefined);
    for (let s = 0; s < shards; s++) this.#dirty.add(s);
  }

  set(prefix: string, identity: number): void {
    const s = shardOf(prefix, this.shards);
    if (this.#entries[s]!.get(prefix) === identity) return;
    this.#entries[s]!.set(prefix, identity);
    this.#dirty.add(s);
  }

  delete(prefix: string): void {
    const s = shardOf(prefix, this.shards);
    if (this.#entries[s]!.delete(prefix)) this.#dirty.add(s);
  }

  get(prefix: string): number | undefined {
    return this.#entries[shardOf(prefix, this.shards)]!.get(prefix);
  }

  get size(): number {
    return this.#entries.reduce((n, m) => n + m.size, 0);
  }

  /** Re-encodes dirty shards; returns those whose version changed. */
  flush(): EncodedResource[] {
    const changed: EncodedResource[] = [];
    const changedShards: number[] = [];
    for (const s of [...this.#dirty].sort((a, b) => a - b)) {
      const shard = this.#entries[s]!;
      // The default sort orders strings by UTF-16 code units, as `<` does, without a JS comparator.
      const entries = [...shard.keys()]
        .sort()
        .map((prefix) => ({ prefix, identity: shard.get(prefix)! }));
      const next = encodeResource(ipcacheResourceName(s), {
        typeUrl: TYPE_IPCACHE,
        value: { shard: s, entries },
      });
      if (next.version !== this.#encoded[s]?.version) {
        this.#encoded[s] = next;
        changed.push(next);
        changedShards.push(s);
      }
    }
    this.#dirty.clear();
    if (changedShards.length > 0) {
      // Copy-on-write: snapshots already published keep the map they hold.
      const next = new Map(this.#published);
      for (const s of changedShards) {
        const r = this.#encoded[s]!;
        const key = resourceKey(r.typeUrl, r.name);
        if (this.#entries[s]!.size > 0) next.set(key, r);
        else next.delete(key); // an emptied shard leaves the nodes
      }
      this.#published = next;
    }
    return changed;
  }

  /** The encoded shards that hold entries, by resource key, as of the last flush. Immutable. */
  get published(): ReadonlyMap<string, EncodedResource> {
    return this.#published;
  }
}
