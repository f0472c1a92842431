import { RESOURCE_TYPES, type EncodedResource } from '../../common/index.js';

type Part = ReadonlyMap<string, EncodedResource>;

/** What changed from one snapshot part to another: resources to send, resources to remove. */
export interface PartDiff {
  readonly changed: readonly EncodedResource[];
  readonly removed: readonly EncodedResource[];
}

/** One response's worth of a difference: what to send and remove of one resource type. */
export interface TypeDelta {
  readonly typeUrl: string;
  readonly changed: readonly EncodedResource[];
  readonly removed: readonly string[];
}

const NONE: PartDiff = { changed: [], removed: [] };

/**
 * `changed` and `removed` as one TypeDelta per resource type that has any,
 * in RESOURCE_TYPES order (the order a node receives a revision's parts in).
 */
export function groupByType(
  changed: Iterable<EncodedResource>,
  removed: Iterable<{ typeUrl: string; name: string }>,
): TypeDelta[] {
  const byType = new Map<string, { changed: EncodedResource[]; removed: string[] }>();
  const of = (typeUrl: string): { changed: EncodedResource[]; removed: string[] } => {
    let t = byType.get(typeUrl);
    if (t === undefined) {
      t = { changed: [], removed: [] };
      byType.set(typeUrl, t);
    }
    return t;
  };
  for (const r of changed) of(r.typeUrl).changed.push(r);
  for (const r of removed) of(r.typeUrl).removed.push(r.name);
  const out: TypeDelta[] = [];
  for (const typeUrl of RESOURCE_TYPES) {
    const t = byType.get(typeUrl);
    if (t !== undefined) out.push({ typeUrl, ...t });
  }
  return out;
}

/**
 * Differences between snapshot parts, computed once per pair and shared by
 * every node making the same step: when an ipcache shard changes, a
 * thousand nodes moving from the old shared part to the new one cost one
 * diff of the shard table, not a thousand. Parts are immutable, so a cache
 * keyed by them (weakly, so old revisions are collected) is exact.
 */
export class PartDiffs {
  readonly #cache = new WeakMap<Part, WeakMap<Part, PartDiff>>();
  readonly #grouped = new WeakMap<PartDiff, readonly TypeDelta[]>();

  /**
   * A node's step from one snapshot's parts to another's (same layout), one
   * TypeDelta per resource type, in sending order. When one part differs
   * (most revisions), the answer is that part diff's grouping, computed once
   * and shared by every node making the step: no allocation per node.
   */
  step(before: readonly Part[], after: readonly Part[]): readonly TypeDelta[] {
    let only: PartDiff | undefined;
    let several: PartDiff[] | undefined;
    for (let i = 0; i < after.length; i++) {
      const d = this.diff(before[i]!, after[i]!);
      if (d === NONE) continue;
      if (only === undefined) only = d;
      else (several ??= [only]).push(d);
    }
    if (several !== undefined)
      return groupByType(
        several.flatMap((d) => d.changed),
        several.flatMap((d) => d.removed),
      );
    if (only === undefined) return [];
    let g = this.#grouped.get(only);
    if (g === undefined) {
      g = groupByType(only.changed, only.removed);
      this.#grouped.set(only, g);
    }
    return g;
  }

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
