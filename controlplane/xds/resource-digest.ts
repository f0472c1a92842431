import {
  decodeResource,
  entriesOfResource,
  entryHash,
  type EncodedResource,
} from '../../common/index.js';

const MASK = (1n << 64n) - 1n;

/**
 * The digest contribution of each encoded resource (sum of its entries'
 * hashes), computed once per resource version and shared by every node that
 * holds it. Resources are immutable, so a WeakMap keyed by them is exact.
 */
export class ResourceDigests {
  readonly #sums = new WeakMap<EncodedResource, bigint>();
  readonly #partSums = new WeakMap<ReadonlyMap<string, EncodedResource>, bigint>();

  of(r: EncodedResource): bigint {
    let sum = this.#sums.get(r);
    if (sum === undefined) {
      sum = 0n;
      for (const e of entriesOfResource(decodeResource(r.typeUrl, r.payload)))
        sum = (sum + entryHash(e)) & MASK;
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
    let sum = 0n;
    for (const part of parts) {
      let s = this.#partSums.get(part);
      if (s === undefined) {
        s = 0n;
        for (const r of part.values()) s = (s + this.of(r)) & MASK;
        this.#partSums.set(part, s);
      }
      sum = (sum + s) & MASK;
    }
    return sum.toString(16).padStart(16, '0');
  }

  /** The digest (16 hex digits) of a node holding exactly these resources. */
  digest(resources: Iterable<EncodedResource>): string {
    let sum = 0n;
    for (const r of resources) sum = (sum + this.of(r)) & MASK;
    return sum.toString(16).padStart(16, '0');
  }
}
