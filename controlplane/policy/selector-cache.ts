import type { Selector } from './selector.js';
import { indexLabel, matchesSelector } from './selector.js';

interface CacheEntry {
  selector: Selector;
  matches: Set<number>;
  users: number;
}

/**
 * One entry per distinct selector with the identities it matches. Selectors
 * are indexed by one `key=value` they require, so an identity that appears is
 * tested only against selectors that could match it (plus the few without
 * such a requirement): the cost of an identity change does not grow with the
 * number of policies. Not safe for concurrent use; owned by one engine.
 */
export class SelectorCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #index = new Map<string, Set<string>>();
  readonly #unindexed = new Set<string>();
  readonly #labels = new Map<number, Readonly<Record<string, string>>>();

  /** Adds a user of `selector`; the first user computes its matches. Returns its key. */
  add(selector: Selector): string {
    const existing = this.#entries.get(selector.key);
    if (existing !== undefined) {
      existing.users += 1;
      return selector.key;
    }
    const matches = new Set<number>();
    for (const [id, labels] of this.#labels) if (matchesSelector(selector, labels)) matches.add(id);
    this.#entries.set(selector.key, { selector, matches, users: 1 });
    const label = indexLabel(selector);
    if (label === undefined) this.#unindexed.add(selector.key);
    else {
      let set = this.#index.get(label);
      if (set === undefined) this.#index.set(label, (set = new Set()));
      set.add(selector.key);
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
    this.#unindexed.delete(key);
    const label = indexLabel(e.selector);
    if (label !== undefined) this.#index.get(label)?.delete(key);
  }

  matches(key: string): ReadonlySet<number> {
    return this.#entries.get(key)?.matches ?? new Set();
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
    const test = (key: string): void => {
      const e = this.#entries.get(key);
      if (e !== undefined && !e.matches.has(id) && matchesSelector(e.selector, labels)) {
        e.matches.add(id);
        touched.push(key);
      }
    };
    for (const [k, v] of Object.entries(labels)) {
      for (const key of this.#index.get(`${k}=${v}`) ?? []) test(key);
    }
    for (const key of this.#unindexed) test(key);
    return touched;
  }

  /** Forgets an identity; returns the keys of the selectors that matched it. */
  removeIdentity(id: number): string[] {
    const labels = this.#labels.get(id);
    if (labels === undefined) return [];
    this.#labels.delete(id);
    const touched: string[] = [];
    const drop = (key: string): void => {
      if (this.#entries.get(key)?.matches.delete(id) === true) touched.push(key);
    };
    for (const [k, v] of Object.entries(labels)) {
      for (const key of this.#index.get(`${k}=${v}`) ?? []) drop(key);
    }
    for (const key of this.#unindexed) drop(key);
    return touched;
  }
}
