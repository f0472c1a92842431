import { compareStrings } from '../../common/index.js';
import type { IpcacheEntry } from '../../proto/index.js';
import { alreadyHeld, claimedTwice } from './claims.js';
import type { Rejection } from './errors.js';
import { EntryCursor, ShardBytes } from './shard-bytes.js';
import type { Attributed, IpcacheRecord } from './types.js';

const WHAT = 'ipcache prefix';
const NONE: readonly IpcacheEntry[] = [];

/** A prefix a touched shard held and no longer does: deleted, unless another shard claims it. */
interface Released {
  resource: string;
  identity: number;
}

type Claim = IpcacheRecord & Attributed;

/** A shard's value as the translation reads it: its bytes, or its decoded entries. */
type ShardValue = ShardBytes | { readonly value: { readonly entries: readonly IpcacheEntry[] } };

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
  readonly #olds = new EntryCursor();
  readonly #news = new EntryCursor();

  constructor(rejections: Rejection[]) {
    this.#rejections = rejections;
  }

  /**
   * Shard `name` goes from `before` (undefined: new) to `after` (undefined:
   * removed): compared in place when both are direct bytes (ShardBytes),
   * else decoded.
   */
  step(name: string, before: ShardValue | undefined, after: ShardValue | undefined): void {
    if (isDirect(before) && isDirect(after)) this.#stepBytes(name, before, after);
    else this.#stepEntries(name, before?.value.entries, after?.value.entries);
  }

  /** `step` on entries decoded. */
  #stepEntries(
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
   * `step` on direct bytes: the same merge, a prefix made a string only when
   * it is emitted (a released one is a substring: it does not outlive the revision).
   */
  #stepBytes(name: string, before: ShardBytes | undefined, after: ShardBytes | undefined): void {
    const o = this.#olds;
    const n = this.#news;
    let hasOld = o.reset(before?.bytes ?? '');
    let hasNew = after === undefined ? n.reset('') : n.reset(after.bytes, after.received);
    while (hasOld || hasNew) {
      if (hasNew && n.repeatsPrevious()) {
        this.#rejections.push(claimedTwice(WHAT, n.prefix(), name, name));
        hasNew = n.next();
        continue;
      }
      const order = !hasNew ? -1 : !hasOld ? 1 : o.comparePrefix(n);
      if (order < 0) {
        (this.#released ??= new Map()).set(o.prefix(), { resource: name, identity: o.identity });
        hasOld = o.next();
      } else if (order > 0) {
        this.#claims.push({ prefix: n.prefix(), identity: n.identity, resource: name });
        hasNew = n.next();
      } else {
        if (o.identity !== n.identity)
          this.upserts.push({ prefix: n.prefix(), identity: n.identity, resource: name });
        hasOld = o.next();
        hasNew = n.next();
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

/** Undefined (no shard) or bytes the cursor reads. */
function isDirect(v: ShardValue | undefined): v is ShardBytes | undefined {
  return v === undefined || (v instanceof ShardBytes && v.direct);
}

/** `entries` if already in prefix order (as the control plane sends them), else a sorted copy. */
function inPrefixOrder(entries: readonly IpcacheEntry[]): readonly IpcacheEntry[] {
  for (let i = 1; i < entries.length; i++) {
    if (entries[i - 1]!.prefix > entries[i]!.prefix)
      return entries.slice().sort((a, b) => compareStrings(a.prefix, b.prefix));
  }
  return entries;
}
