import type { Selector } from './selector.js';
import { indexLabel, matchesSelector } from './selector.js';

interface CacheEntry {
  selector: Selector;
  matches: Set<number>;
  users: number;
}

/** key → value → members, without building `key=value` strings on hot paths. */
class LabelIndex<T> {
  readonly #byKey = new Map<string, Map<string, Set<T>>>();

  get(key: string, value: string): ReadonlySet<T> | undefined {
    return this.#byKey.get(key)?.get(value);
  }

  add(key: string, value: string, member: T): void {
    let byValue = this.#byKey.get(key);
    if (byValue === undefined) this.#byKey.set(key, (byValue = new Map<string, Set<T>>()));
    let set = byValue.get(value);
    if (set === undefined) byValue.set(value, (set = new Set<T>()));
    set.add(member);
  }

  delete(key: string, value: string, member: T): void {
    const byValue = this.#byKey.get(key);
    const set = byValue?.get(value);
    if (set === undefined) return;
    set.delete(member);
    if (set.size === 0) byValue!.delete(value);
  }
}

const NONE: ReadonlySet<number> = new Set();

/**
 * One entry per distinct selector with the identities it matches. Selectors
 * are indexed by one `key=value` they require, so an identity that appears is
 * tested only against selectors that could match it (plus the few without
 * such a requirement): the cost of an identity change does not grow with the
 * number of policies. Identities are indexed by their labels the same way, so
 * a selector added by a policy change is tested only against identities that
 * could match it. Not safe for concurrent use; owned by one engine.
 */
export class SelectorCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #index = new LabelIndex<CacheEntry>();
  readonly #unindexed = new Set<CacheEntry>();
  readonly #labels = new Map<number, Readonly<Record<string, string>>>();
  readonly #identities = new LabelIndex<number>();

  /** Adds a user of `selector`; the first user computes its matches. Returns its key. */
  add(selector: Selector): string {
    const existing = this.#entries.get(selector.key);
    if (existing !== undefined) {
      existing.users += 1;
      return selector.key;
    }
    const e: CacheEntry = { selector, matches: new Set(), users: 1 };
    this.#entries.set(selector.key, e);
    const label = indexLabel(selector);
    if (label === undefined) {
      this.#unindexed.add(e);
      for (const [id, labels] of this.#labels)
        if (matchesSelector(selector, labels)) e.matches.add(id);
    } else {
      this.#index.add(label.key, label.value, e);
      for (const id of this.#identities.get(label.key, label.value) ?? NONE)
        if (matchesSelector(selector, this.#labels.get(id)!)) e.matches.add(id);
    }
    return selector.key;
  }

  /** Drops a user; the last one removes the entry. */
  release(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    e.users -= 1;
    if (e.users > 0) return;
    this.#entries.delete(key);
    this.#unindexed.delete(e);
    const label = indexLabel(e.selector);
    if (label !== undefined) this.#index.delete(label.key, label.value, e);
  }

  matches(key: string): ReadonlySet<number> {
    return this.#entries.get(key)?.matches ?? NONE;
  }

  get size(): number {
    return this.#entries.size;
  }

  labelsOf(id: number): Readonly<Record<string, string>> | undefined {
    return this.#labels.get(id);
  }

  /** Records an identity; returns the keys of the selectors that match it. */
  addIdentity(id: number, labels: Readonly<Record<string, string>>): string[] {
    this.#labels.set(id, labels);
    const touched: string[] = [];
    for (const k in labels) {
      const v = labels[k]!;
      this.#identities.add(k, v, id);
      for (const e of this.#index.get(k, v) ?? []) addMatch(e, id, labels, touched);
    }
    for (const e of this.#unindexed) addMatch(e, id, labels, touched);
    return touched;
  }

  /** Forgets an identity; returns the keys of the selectors that matched it. */
  removeIdentity(id: number): string[] {
    const labels = this.#labels.get(id);
    if (labels === undefined) return [];
    this.#labels.delete(id);
    const touched: string[] = [];
    for (const k in labels) {
      const v = labels[k]!;
      this.#identities.delete(k, v, id);
      for (const e of this.#index.get(k, v) ?? [])
        if (e.matches.delete(id)) touched.push(e.selector.key);
    }
    for (const e of this.#unindexed) if (e.matches.delete(id)) touched.push(e.selector.key);
    return touched;
  }
}

function addMatch(
  e: CacheEntry,
  id: number,
  labels: Readonly<Record<string, string>>,
  touched: string[],
): void {
  if (!e.matches.has(id) && matchesSelector(e.selector, labels)) {
    e.matches.add(id);
    touched.push(e.selector.key);
  }
}
