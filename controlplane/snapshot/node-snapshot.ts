import { resourceKey, type EncodedResource } from '../../common/index.js';

export function nodeKey(cluster: string, node: string): string {
  return `${cluster}/${node}`;
}

/**
 * What one node should hold at a mesh revision. Immutable once published.
 * Resources many nodes share are held by reference: the mesh-wide ipcache
 * shards (one map every snapshot of a revision points to) and the services
 * of the node's cluster (one map per cluster), so an ipcache change costs
 * O(shards), not O(nodes x shards). Parts never share a key.
 */
export class NodeSnapshot {
  readonly node: string;
  readonly cluster: string;
  /** the mesh revision at which this node's expected state last changed */
  readonly revision: number;
  readonly #parts: readonly ReadonlyMap<string, EncodedResource>[];

  constructor(
    cluster: string,
    node: string,
    revision: number,
    parts: readonly ReadonlyMap<string, EncodedResource>[],
  ) {
    this.cluster = cluster;
    this.node = node;
    this.revision = revision;
    this.#parts = parts;
  }

  get key(): string {
    return nodeKey(this.cluster, this.node);
  }

  /**
   * The parts, in a fixed order (shared ipcache, the cluster's services,
   * local endpoints): snapshots of one cache line up part by part, so two of
   * them are diffed part by part and a part held by both is skipped whole.
   */
  get parts(): readonly ReadonlyMap<string, EncodedResource>[] {
    return this.#parts;
  }

  get(key: string): EncodedResource | undefined {
    for (const p of this.#parts) {
      const r = p.get(key);
      if (r) return r;
    }
    return undefined;
  }

  *resources(): IterableIterator<EncodedResource> {
    for (const p of this.#parts) yield* p.values();
  }

  get size(): number {
    return this.#parts.reduce((n, p) => n + p.size, 0);
  }

  /** Built from the very same parts (by reference)? */
  sameParts(other: NodeSnapshot): boolean {
    return (
      this.#parts.length === other.#parts.length &&
      this.#parts.every((p, i) => p === other.#parts[i])
    );
  }

  /** Same expected content (resource keys and versions)? */
  sameAs(other: NodeSnapshot): boolean {
    if (
      this.#parts.length === other.#parts.length &&
      this.#parts.every((p, i) => p === other.#parts[i])
    )
      return true;
    if (this.size !== other.size) return false;
    for (const r of this.resources()) {
      if (other.get(resourceKey(r.typeUrl, r.name))?.version !== r.version) return false;
    }
    return true;
  }
}
