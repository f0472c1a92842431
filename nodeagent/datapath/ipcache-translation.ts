import { compareStrings } from '../../common/index.js';
import type { IpcacheEntry } from '../../proto/index.js';
import { alreadyHeld, claimedTwice } from './claims.js';
import type { Rejection } from './errors.js';
import type { Attributed, IpcacheRecord } from './types.js';

const WHAT = 'ipcache prefix';
const NONE: readonly IpcacheEntry[] = [];

/** A prefix a touched shard held and no longer does: deleted, unless another shard claims it. */
interface Released {
  resource: string;
  identity: number;
}

type Claim = IpcacheRecord & Attributed;

/**
 * One revision's ipcache entries, from the shards it replaces, adds and
 * removes: feed every such shard to `step`, then `finish`.
 *
 * Most revisions replace a shard by itself with one prefix more, less or
 * changed, so each shard's old and new entries are compared directly, merged
 * in prefix order (the order the control plane encodes them in; another
 * order is sorted first). Only a prefix new to its shard can conflict with
 * another resource, and only a prefix a shard dropped can move to another:
 * those few are resolved across the revision in `finish`, by the prefixes the
 * revision's shards released and, for the rest, the owner the datapath's
 * holders name. No per-prefix map of the touched shards is built.
 *
 * Emits only entries whose value changes: a prefix kept with its identity, or
 * moved between two shards with it, writes nothing.
 */
export class IpcacheTranslation {
  readonly upserts: Claim[] = [];
  readonly deletes: string[] = [];
  readonly #rejections: Rejection[];
  /** prefixes new to their shard, in the order seen */
  readonly #claims: Claim[] = [];
  #released: Map<string, Released> | undefined;

  constructor(rejections: Rejection[]) {
    this.#rejections = rejections;
  }

  /** Shard `name` goes from `before` (undefined: new) to `after` (undefined: removed). */
  step(
    name: string,
    before: readonly IpcacheEntry[] | undefined,
    after: readonly IpcacheEntry[] | undefined,
  ): void {
    const olds = before === undefined ? NONE : inPrefixOrder(before);
    const news = after === undefined ? NONE : inPrefixOrder(after);
    let i = 0;
    let j = 0;
    while (i < olds.length || j < news.length) {
      const n = j < news.length ? news[j]! : undefined;
      if (n !== undefined && j > 0 && news[j - 1]!.prefix === n.prefix) {
        this.#rejections.push(claimedTwice(WHAT, n.prefix, name, name));
        j++;
        continue;
      }
      const o = i < olds.length ? olds[i]! : undefined;
      if (o !== undefined && (n === undefined || o.prefix < n.prefix)) {
        (this.#released ??= new Map()).set(o.prefix, { resource: name, identity: o.identity });
        i++;
      } else if (o === undefined || (n !== undefined && n.prefix < o.prefix)) {
        this.#claims.push({ prefix: n!.prefix, identity: n!.identity, resource: name });
        j++;
      } else {
        if (o.identity !== n!.identity)
          this.upserts.push({ prefix: o.prefix, identity: n!.identity, resource: name });
        i++;
        j++;
      }
    }
  }

  /**
   * Resolves the prefixes new to their shard: moved from a shard that
   * released them, new to the node, or refused — claimed twice, or held by a
   * shard that keeps it. `owners` names the held shard of a prefix
   * (undefined: none); `touched` tells whether the revision replaces or
   * removes a shard.
   */
  finish(
    owners: { ipcacheOwner(prefix: string): string | undefined },
    touched: (name: string) => boolean,
  ): void {
    const claims = this.#claims;
    const claimed = claims.length > 1 ? new Map<string, string>() : undefined;
    for (const c of claims) {
      const first = claimed?.get(c.prefix);
      if (first !== undefined) {
        this.#rejections.push(claimedTwice(WHAT, c.prefix, first, c.resource));
        continue;
      }
      const from = this.#released?.get(c.prefix);
      if (from !== undefined) {
        this.#released!.delete(c.prefix);
        if (from.identity !== c.identity) this.upserts.push(c);
      } else {
        const held = owners.ipcacheOwner(c.prefix);
        if (held !== undefined && held !== c.resource) {
          // A shard this revision touches and that did not release the prefix keeps it.
          this.#rejections.push(
            touched(held)
              ? claimedTwice(WHAT, c.prefix, held, c.resource)
              : alreadyHeld(WHAT, c.prefix, c.resource, held),
          );
          continue;
        }
        this.upserts.push(c);
      }
      claimed?.set(c.prefix, c.resource);
    }
    if (this.#released !== undefined) for (const p of this.#released.keys()) this.deletes.push(p);
  }
}

/** `entries` if already in prefix order (as the control plane sends them), else a sorted copy. */
function inPrefixOrder(entries: readonly IpcacheEntry[]): readonly IpcacheEntry[] {
  for (let i = 1; i < entries.length; i++) {
    if (entries[i - 1]!.prefix > entries[i]!.prefix)
      return entries.slice().sort((a, b) => compareStrings(a.prefix, b.prefix));
  }
  return entries;
}
