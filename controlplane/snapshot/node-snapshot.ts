import { resourceKey, type EncodedResource } from '../../common/index.js';

export function nodeKey(cluster: string, node: string): string {
  return `${cluster}/${node}`;
}

/**
 * What one node should hold at a mesh revision. Immutable once published.
 * Resources every node shares (ipcache shards, services) are held by
 * reference in one map that all snapshots of a revision point to, so an
 * ipcache change costs O(shards), not O(nodes x shards).
 */
export class NodeSnapshot {
  readonly node: string;
  readonly cluster: string;
  /** the mesh revision at which this node's expected state last changed */
  readonly revision: number;
  readonly #shared: ReadonlyMap<string, EncodedResource>;
  readonly #local: ReadonlyMap<string, EncodedResource>;

  constructor(
    cluster: string,
    node: string,
    revision: number,
    shared: ReadonlyMap<string, EncodedResource>,
    local: ReadonlyMap<string, EncodedResource>,
  ) {
    this.cluster = cluster;
    this.node = node;
    this.revision = revision;
    this.#shared = shared;
    this.#local = local;
  }

  get key(): string {
    return nodeKey(this.cluster, this.node);
  }

  get(key: string): EncodedResource | undefined {
    return this.#shared.get(key) ?? this.#local.get(key);
  }

  *resources(): IterableIterator<EncodedResource> {
    yield* this.#shared.values();
    yield* this.#local.values();
  }

  get size(): number {
    return this.#shared.size + this.#local.size;
  }

  /** Same expected content (resource keys and versions)? */
  sameAs(other: NodeSnapshot): boolean {
    if (this.#shared === other.#shared && this.#local === other.#local) return true;
    if (this.size !== other.size) return false;
    for (const r of this.resources()) {
      if (other.get(resourceKey(r.typeUrl, r.name))?.version !== r.version) return false;
    }
    return true;
  }
}
