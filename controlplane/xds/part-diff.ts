import type { EncodedResource } from '../../common/index.js';

type Part = ReadonlyMap<string, EncodedResource>;

/** What changed from one snapshot part to another: resources to send, resources to remove. */
export interface PartDiff {
  readonly changed: readonly EncodedResource[];
  readonly removed: readonly EncodedResource[];
}

const NONE: PartDiff = { changed: [], removed: [] };

/**
 * Differences between snapshot parts, computed once per pair and shared by
 * every node making the same step: when an ipcache shard changes, a
 * thousand nodes moving from the old shared part to the new one cost one
 * diff of the shard table, not a thousand. Parts are immutable, so a cache
 * keyed by them (weakly, so old revisions are collected) is exact.
 */
export class PartDiffs {
  readonly #cache = new WeakMap<Part, WeakMap<Part, PartDiff>>();

  diff(before: Part, after: Part): PartDiff {
    if (before === after) return NONE;
    let byAfter = this.#cache.get(before);
    const hit = byAfter?.get(after);
    if (hit) return hit;
    const changed: EncodedResource[] = [];
    const removed: EncodedResource[] = [];
    for (const [key, r] of after) {
      const old = before.get(key);
      if (old !== r && old?.version !== r.version) changed.push(r);
    }
    for (const [key, old] of before) if (!after.has(key)) removed.push(old);
    const d = changed.length === 0 && removed.length === 0 ? NONE : { changed, removed };
    if (!byAfter) {
      byAfter = new WeakMap();
      this.#cache.set(before, byAfter);
    }
    byAfter.set(after, d);
    return d;
  }
}
