import { TYPE_IPCACHE } from '../../proto/index.js';
import { encodeResource, type EncodedResource } from '../../common/index.js';

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

  constructor(shards = 256) {
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
    for (const s of [...this.#dirty].sort((a, b) => a - b)) {
      const entries = [...this.#entries[s]!.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([prefix, identity]) => ({ prefix, identity }));
      const next = encodeResource(ipcacheResourceName(s), {
        typeUrl: TYPE_IPCACHE,
        value: { shard: s, entries },
      });
      if (next.version !== this.#encoded[s]?.version) {
        this.#encoded[s] = next;
        changed.push(next);
      }
    }
    this.#dirty.clear();
    return changed;
  }

  /** Current encoded shards that hold entries (call flush() first); an emptied shard leaves the nodes. */
  resources(): EncodedResource[] {
    return this.#encoded.filter(
      (r, s): r is EncodedResource => r !== undefined && this.#entries[s]!.size > 0,
    );
  }
}
