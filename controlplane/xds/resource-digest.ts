import {
  Digest,
  decodeResource,
  entriesOfResource,
  type EncodedResource,
} from '../../common/index.js';

/**
 * The digest contribution of each encoded resource (sum of its entries'
 * hashes), computed once per resource version and shared by every node that
 * holds it. Resources are immutable, so a WeakMap keyed by them is exact.
 */
export class ResourceDigests {
  readonly #sums = new WeakMap<EncodedResource, Digest>();
  readonly #partSums = new WeakMap<ReadonlyMap<string, EncodedResource>, Digest>();

  of(r: EncodedResource): Digest {
    let sum = this.#sums.get(r);
    if (sum === undefined) {
      sum = Digest.of(entriesOfResource(decodeResource(r.typeUrl, r.payload)));
      this.#sums.set(r, sum);
    }
    return sum;
  }

  /**
   * The digest of a snapshot made of these parts (parts never share a key).
   * Each part's sum is computed once and shared by every snapshot holding
   * that part, so the nodes of a revision that changed one ipcache shard
   * cost one sum of the shard table, not one each.
   */
  digestOfParts(parts: readonly ReadonlyMap<string, EncodedResource>[]): string {
    const sum = new Digest();
    for (const part of parts) {
      let s = this.#partSums.get(part);
      if (s === undefined) {
        s = new Digest();
        for (const r of part.values()) s.merge(this.of(r));
        this.#partSums.set(part, s);
      }
      sum.merge(s);
    }
    return sum.toString();
  }

  /** The digest (16 hex digits) of a node holding exactly these resources. */
  digest(resources: Iterable<EncodedResource>): string {
    const sum = new Digest();
    for (const r of resources) sum.merge(this.of(r));
    return sum.toString();
  }
}
