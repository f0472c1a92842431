import type { PolicyUnit, Rule } from './model.js';
import type { SelectorCache } from './selector-cache.js';

export interface RuleUser {
  unit: PolicyUnit;
  rule: Rule;
}

/**
 * The policy units in force, grouped by policy in compile order, and the
 * indexes the engine finds them by: which units a selector is the subject
 * of, which rules use a selector as a peer, which units match an identity as
 * subject, which units depend on endpoints or on CIDR prefixes. Adding and
 * removing a policy touches only its own units' entries (and the identities
 * its subjects match), so a policy change costs what the policy selects,
 * not what the engine holds. Registers its selectors with the cache.
 */
export class UnitIndex {
  readonly #cache: SelectorCache;
  /** policy id → its units; Map order is compile order (a replaced policy keeps its place) */
  readonly #policies = new Map<string, PolicyUnit[]>();
  readonly #rank = new Map<PolicyUnit, number>();
  #nextRank = 0;
  readonly #subjectKey = new Map<PolicyUnit, string>();
  /** subject selector key → the units it is the subject of */
  readonly #subjectUsers = new Map<string, PolicyUnit[]>();
  /** peer selector key → the rules that use it */
  readonly #peerUsers = new Map<string, RuleUser[]>();
  /** identity → the units whose subject matches it, in compile order */
  readonly #subjectsOf = new Map<number, PolicyUnit[]>();
  /** units with rules whose entries depend on endpoints (ipBlock over pods, egress named ports) */
  readonly dependent = new Set<PolicyUnit>();
  /** units with CIDR peers: their entries depend on the set of required prefixes */
  readonly cidr = new Set<PolicyUnit>();
  /** required prefix → how many CIDR peers (blocks and excepts) name it */
  readonly #prefixUsers = new Map<string, number>();

  constructor(cache: SelectorCache) {
    this.#cache = cache;
  }

  policies(): IterableIterator<[string, readonly PolicyUnit[]]> {
    return this.#policies.entries();
  }

  units(policy: string): readonly PolicyUnit[] {
    return this.#policies.get(policy) ?? [];
  }

  /** Every prefix the units' CIDR peers need a CIDR identity for. */
  prefixes(): IterableIterator<string> {
    return this.#prefixUsers.keys();
  }

  subjectsOf(identity: number): readonly PolicyUnit[] {
    return this.#subjectsOf.get(identity) ?? [];
  }

  peerUsers(selectorKey: string): readonly RuleUser[] {
    return this.#peerUsers.get(selectorKey) ?? [];
  }

  /** Identities the unit's subject selector matches (before the cluster filter). */
  subjectMatches(unit: PolicyUnit): ReadonlySet<number> {
    const key = this.#subjectKey.get(unit);
    return key === undefined ? new Set() : this.#cache.matches(key);
  }

  /**
   * Replaces the units of one policy (none: removes it). A new policy goes
   * last; a replaced one keeps its place, as a full compile of the policies
   * in that order would have them.
   */
  set(policy: string, units: readonly PolicyUnit[]): void {
    const old = this.#policies.get(policy);
    let rank: number;
    if (old === undefined) rank = this.#nextRank++ * 65_536;
    else {
      rank = this.#rank.get(old[0]!)!;
      for (const u of old) this.#removeUnit(u);
    }
    if (units.length === 0) {
      this.#policies.delete(policy);
      return;
    }
    this.#policies.set(policy, [...units]);
    units.forEach((u, i) => this.#addUnit(u, rank + i));
  }

  /** The units whose subject matches a newly seen identity (via the selectors it touched). */
  indexIdentity(id: number, touched: Iterable<string>): void {
    const units = new Set<PolicyUnit>();
    for (const key of touched) for (const u of this.#subjectUsers.get(key) ?? []) units.add(u);
    if (units.size === 0) {
      this.#subjectsOf.delete(id);
      return;
    }
    this.#subjectsOf.set(
      id,
      [...units].sort((a, b) => this.#rank.get(a)! - this.#rank.get(b)!),
    );
  }

  forgetIdentity(id: number): void {
    this.#subjectsOf.delete(id);
  }

  #addUnit(u: PolicyUnit, rank: number): void {
    this.#rank.set(u, rank);
    if (u.subject !== null) {
      const key = this.#cache.add(u.subject);
      this.#subjectKey.set(u, key);
      pushTo(this.#subjectUsers, key, u);
      for (const id of this.#cache.matches(key)) {
        const list = this.#subjectsOf.get(id);
        if (list === undefined) this.#subjectsOf.set(id, [u]);
        else {
          // Units arrive in rank order when building; a policy change inserts in place.
          let at = list.length;
          while (at > 0 && this.#rank.get(list[at - 1]!)! > rank) at--;
          list.splice(at, 0, u);
        }
      }
    }
    for (const rule of u.rules) {
      if (rule.endpointDependent) this.dependent.add(u);
      for (const p of rule.peers) {
        if (p.kind === 'cidr') {
          this.cidr.add(u);
          for (const c of [p.block.cidr, ...p.block.except])
            this.#prefixUsers.set(c.text, (this.#prefixUsers.get(c.text) ?? 0) + 1);
        }
        if (p.kind !== 'selector') continue;
        const key = this.#cache.add(p.selector);
        const users = this.#peerUsers.get(key);
        if (users === undefined) this.#peerUsers.set(key, [{ unit: u, rule }]);
        else if (!users.some((x) => x.rule === rule)) users.push({ unit: u, rule });
      }
    }
  }

  #removeUnit(u: PolicyUnit): void {
    this.#rank.delete(u);
    this.dependent.delete(u);
    this.cidr.delete(u);
    const key = this.#subjectKey.get(u);
    if (key !== undefined) {
      this.#subjectKey.delete(u);
      for (const id of this.#cache.matches(key)) {
        const list = this.#subjectsOf.get(id)?.filter((x) => x !== u) ?? [];
        if (list.length > 0) this.#subjectsOf.set(id, list);
        else this.#subjectsOf.delete(id);
      }
      removeFrom(this.#subjectUsers, key, (x) => x === u);
      this.#cache.release(key);
    }
    for (const rule of u.rules) {
      for (const p of rule.peers) {
        if (p.kind === 'cidr') {
          for (const c of [p.block.cidr, ...p.block.except]) {
            const n = (this.#prefixUsers.get(c.text) ?? 1) - 1;
            if (n > 0) this.#prefixUsers.set(c.text, n);
            else this.#prefixUsers.delete(c.text);
          }
        }
        if (p.kind !== 'selector') continue;
        removeFrom(this.#peerUsers, p.selector.key, (x) => x.rule === rule);
        this.#cache.release(p.selector.key);
      }
    }
  }
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function removeFrom<K, V>(map: Map<K, V[]>, key: K, drop: (v: V) => boolean): void {
  const list = map.get(key)?.filter((v) => !drop(v)) ?? [];
  if (list.length > 0) map.set(key, list);
  else map.delete(key);
}
