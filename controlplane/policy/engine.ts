import { endpointName } from '../../common/index.js';
import type { CidrBlock, Prefix } from './cidr.js';
import { blockSelectsPrefix, parsePrefix } from './cidr.js';
import { DeltaJournal } from './delta-journal.js';
import { EndpointState } from './endpoint-state.js';
import type { PolicyUnit, Rule } from './model.js';
import type { RuleContext } from './rule-entries.js';
import { peerContributions, rulePeers } from './rule-entries.js';
import { SelectorCache } from './selector-cache.js';
import type {
  CompileOptions,
  EndpointDelta,
  EndpointInfo,
  EndpointPolicyResult,
  IdentityInfo,
  PolicyInfo,
} from './types.js';

export const DEFAULT_CAPACITY = 16_384;
const WORLD = 2;

/** Every prefix the units' CIDR peers need a CIDR identity for (blocks and excepts), sorted. */
export function requiredPrefixes(units: readonly PolicyUnit[]): string[] {
  const out = new Set<string>();
  for (const u of units) {
    for (const r of u.rules) {
      for (const p of r.peers) {
        if (p.kind !== 'cidr') continue;
        out.add(p.block.cidr.text);
        for (const e of p.block.except) out.add(e.text);
      }
    }
  }
  return [...out].sort();
}

/**
 * The policy engine: compiles policy units into per-endpoint policy maps and
 * keeps them current as identities and endpoints come and go, returning
 * per-endpoint deltas. Pure (no I/O, no clock); not safe for concurrent use.
 * Results and deltas are fresh objects owned by the caller.
 */
export class PolicyEngine implements RuleContext {
  readonly #cache = new SelectorCache();
  readonly #units: PolicyUnit[];
  readonly #capacity: number;
  readonly #cidrIdentity: (prefix: string) => number | undefined;
  readonly #prefixes: Prefix[];
  /** selector key → the (unit, rule) pairs that use it as a peer */
  readonly #peerUsers = new Map<string, { unit: PolicyUnit; rule: Rule }[]>();
  readonly #subjectKeys = new Map<string, string>();
  readonly #identities = new Map<number, IdentityInfo>();
  readonly #endpoints = new Map<string, EndpointInfo>();
  /** live endpoints (identity known) by identity */
  readonly #byIdentity = new Map<number, EndpointInfo[]>();
  /** every endpoint's name by identity, live or not */
  readonly #allByIdentity = new Map<number, Set<string>>();
  readonly #states = new Map<string, EndpointState>();
  /** unit id → names of the endpoints it selects */
  readonly #selected = new Map<string, Set<string>>();
  readonly #dependentUnits: PolicyUnit[];
  /** identity → the units whose subject selector matches it */
  readonly #subjectUnits = new Map<number, PolicyUnit[]>();
  /** subject selector key → the units it is the subject of */
  readonly #subjectUsers = new Map<string, PolicyUnit[]>();
  readonly #order = new Map<PolicyUnit, number>();

  constructor(
    units: readonly PolicyUnit[],
    input: { identities: readonly IdentityInfo[]; endpoints: readonly EndpointInfo[] },
    opts: CompileOptions = {},
  ) {
    this.#units = [...units];
    this.#capacity = opts.capacity ?? DEFAULT_CAPACITY;
    this.#cidrIdentity = opts.cidrIdentity ?? (() => undefined);
    this.#prefixes = requiredPrefixes(units).map((p) => parsePrefix(p) as Prefix);
    this.#dependentUnits = this.#units.filter((u) => u.rules.some((r) => r.endpointDependent));
    for (const u of this.#units) {
      this.#selected.set(u.id, new Set());
      this.#order.set(u, this.#order.size);
      if (u.subject !== null) {
        const key = this.#cache.add(u.subject);
        this.#subjectKeys.set(u.id, key);
        const users = this.#subjectUsers.get(key);
        if (users === undefined) this.#subjectUsers.set(key, [u]);
        else users.push(u);
      }
      for (const rule of u.rules) {
        for (const p of rule.peers) {
          if (p.kind !== 'selector') continue;
          const key = this.#cache.add(p.selector);
          let users = this.#peerUsers.get(key);
          if (users === undefined) this.#peerUsers.set(key, (users = []));
          if (!users.some((x) => x.rule === rule)) users.push({ unit: u, rule });
        }
      }
    }
    for (const id of input.identities) {
      this.#identities.set(id.id, id);
      this.#cache.addIdentity(id.id, id.labels);
    }
    this.#units.forEach((u) => {
      const key = this.#subjectKeys.get(u.id);
      if (key === undefined) return;
      for (const id of this.#cache.matches(key)) {
        const list = this.#subjectUnits.get(id);
        if (list === undefined) this.#subjectUnits.set(id, [u]);
        else list.push(u);
      }
    });
    for (const ep of input.endpoints) this.#indexEndpoint(ep);
    for (const ep of this.#endpoints.values()) this.#recompute(ep, null);
  }

  // RuleContext
  selectorMatches(peer: { selector: { key: string } }): ReadonlySet<number> {
    return this.#cache.matches(peer.selector.key);
  }

  cidrMatches(block: CidrBlock): { ids: number[]; errors: string[] } {
    const ids: number[] = [];
    const errors: string[] = [];
    if (block.cidr.len === 0) ids.push(WORLD);
    for (const p of this.#prefixes) {
      if (!blockSelectsPrefix(block, p)) continue;
      const id = this.#cidrIdentity(p.text);
      if (id === undefined) errors.push(`no CIDR identity allocated for ${p.text}`);
      else ids.push(id);
    }
    return { ids, errors };
  }

  endpointsByIdentity(): ReadonlyMap<number, readonly EndpointInfo[]> {
    return this.#byIdentity;
  }

  /** Live endpoints: indexed by identity only while their identity is known. */
  #indexEndpoint(ep: EndpointInfo): void {
    const name = endpointName(ep);
    this.#endpoints.set(name, ep);
    let all = this.#allByIdentity.get(ep.identity);
    if (all === undefined) this.#allByIdentity.set(ep.identity, (all = new Set()));
    all.add(name);
    if (!this.#identities.has(ep.identity)) return;
    const list = this.#byIdentity.get(ep.identity);
    if (list === undefined) this.#byIdentity.set(ep.identity, [ep]);
    else list.push(ep);
  }

  #unindexEndpoint(name: string): EndpointInfo | undefined {
    const ep = this.#endpoints.get(name);
    if (ep === undefined) return undefined;
    this.#endpoints.delete(name);
    const all = this.#allByIdentity.get(ep.identity);
    all?.delete(name);
    if (all?.size === 0) this.#allByIdentity.delete(ep.identity);
    const list = (this.#byIdentity.get(ep.identity) ?? []).filter((e) => endpointName(e) !== name);
    if (list.length === 0) this.#byIdentity.delete(ep.identity);
    else this.#byIdentity.set(ep.identity, list);
    return ep;
  }

  /** Compiles one endpoint from scratch, noting the change in `deltas` (null: building). */
  #recompute(ep: EndpointInfo, deltas: DeltaJournal | null): void {
    const name = endpointName(ep);
    const old = this.#states.get(name);
    for (const u of old?.units ?? []) this.#selected.get(u.id)?.delete(name);
    if (!this.#identities.has(ep.identity) || this.#endpoints.get(name) !== ep) {
      deltas?.replaced(name, old, undefined);
      this.#states.delete(name);
      return;
    }
    const units = (this.#subjectUnits.get(ep.identity) ?? []).filter(
      (u) => u.ref.cluster === ep.cluster,
    );
    const state = new EndpointState(ep, units);
    const changed = new Set<string>();
    for (const u of units) {
      this.#selected.get(u.id)!.add(name);
      for (const rule of u.rules) {
        if (!state.applies(u, rule.section)) continue;
        const peers = rulePeers(rule, this);
        if (peers.errors.length > 0)
          this.#errors(state, u).push(...peers.errors.map((message) => ({ peer: -1, message })));
        for (const peer of peers.ids) this.#addPeer(state, u, rule, peer, changed);
      }
    }
    state.settle(changed);
    deltas?.replaced(name, old, state);
    this.#states.set(name, state);
  }

  #finish(deltas: DeltaJournal): EndpointDelta[] {
    return deltas.finish(this.#states, (s) => s.errorList(this.#capacity));
  }

  /** The units whose subject selector matches an identity, in unit order (via the touched selectors only). */
  #indexSubjects(id: number, touched: Iterable<string>): void {
    const units = new Set<PolicyUnit>();
    for (const key of touched) for (const u of this.#subjectUsers.get(key) ?? []) units.add(u);
    const ordered = [...units].sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
    if (ordered.length > 0) this.#subjectUnits.set(id, ordered);
    else this.#subjectUnits.delete(id);
  }

  #errors(state: EndpointState, u: PolicyUnit): { peer: number; message: string }[] {
    let list = state.errors.get(u.id);
    if (list === undefined) state.errors.set(u.id, (list = []));
    return list;
  }

  #addPeer(
    state: EndpointState,
    u: PolicyUnit,
    rule: Rule,
    peer: number,
    changed: Set<string>,
  ): void {
    const errors: string[] = [];
    state.add(u.id, peerContributions(state.info, u, rule, peer, this, errors), changed);
    if (errors.length > 0)
      this.#errors(state, u).push(...errors.map((message) => ({ peer, message })));
  }

  /** Adds or replaces an identity. Returns the endpoints whose policy changed. */
  upsertIdentity(identity: IdentityInfo): EndpointDelta[] {
    const deltas = new DeltaJournal();
    if (this.#identities.has(identity.id)) this.#dropIdentity(identity.id, deltas);
    this.#identities.set(identity.id, identity);
    const touched = this.#cache.addIdentity(identity.id, identity.labels);
    this.#indexSubjects(identity.id, touched);
    const owned = [...(this.#allByIdentity.get(identity.id) ?? [])].map((n) =>
      this.#endpoints.get(n)!,
    );
    if (owned.length > 0) this.#byIdentity.set(identity.id, owned);
    this.#peerDelta(identity.id, touched, deltas, (state, u, rule, changed) =>
      this.#addPeer(state, u, rule, identity.id, changed),
    );
    for (const ep of owned) this.#recompute(ep, deltas);
    if (owned.length > 0) this.#recomputeDependent(deltas);
    return this.#finish(deltas);
  }

  removeIdentity(id: number): EndpointDelta[] {
    const deltas = new DeltaJournal();
    this.#dropIdentity(id, deltas);
    return this.#finish(deltas);
  }

  #dropIdentity(id: number, deltas: DeltaJournal): void {
    if (!this.#identities.has(id)) return;
    this.#identities.delete(id);
    const touched = this.#cache.removeIdentity(id);
    this.#subjectUnits.delete(id);
    const owned = this.#byIdentity.get(id) ?? [];
    this.#byIdentity.delete(id);
    for (const ep of owned) this.#recompute(ep, deltas);
    this.#peerDelta(id, touched, deltas, (state, u, rule, changed) => {
      state.remove(u.id, changed, (c) => c.peer === id && c.rule === rule);
      const errs = state.errors.get(u.id);
      if (errs !== undefined)
        state.errors.set(
          u.id,
          errs.filter((e) => e.peer !== id),
        );
    });
    if (owned.length > 0) this.#recomputeDependent(deltas);
  }

  /** Applies `change` to every endpoint of every unit whose peer selectors in `touched` use the identity. */
  #peerDelta(
    id: number,
    touched: readonly string[],
    deltas: DeltaJournal,
    change: (state: EndpointState, u: PolicyUnit, rule: Rule, changed: Set<string>) => void,
  ): void {
    const pairs = new Set<{ unit: PolicyUnit; rule: Rule }>();
    for (const key of touched) for (const p of this.#peerUsers.get(key) ?? []) pairs.add(p);
    const seen = new Set<Rule>();
    const changedBy = new Map<string, Set<string>>();
    for (const { unit, rule } of pairs) {
      if (seen.has(rule)) continue;
      seen.add(rule);
      for (const name of this.#selected.get(unit.id) ?? []) {
        const state = this.#states.get(name);
        if (state === undefined || state.info.identity === id || !state.applies(unit, rule.section))
          continue;
        let changed = changedBy.get(name);
        if (changed === undefined) changedBy.set(name, (changed = new Set()));
        change(state, unit, rule, changed);
      }
    }
    for (const [name, changed] of changedBy) {
      const state = this.#states.get(name)!;
      state.settle(changed, deltas.begin(name, state));
    }
  }

  #recomputeDependent(deltas: DeltaJournal): void {
    const names = new Set<string>();
    for (const u of this.#dependentUnits)
      for (const n of this.#selected.get(u.id) ?? []) names.add(n);
    for (const n of names) {
      const ep = this.#endpoints.get(n);
      if (ep !== undefined) this.#recompute(ep, deltas);
    }
  }

  /** Adds or replaces an endpoint (any cluster). */
  upsertEndpoint(ep: EndpointInfo): EndpointDelta[] {
    const deltas = new DeltaJournal();
    this.#unindexEndpoint(endpointName(ep));
    this.#indexEndpoint(ep);
    this.#recompute(ep, deltas);
    this.#recomputeDependent(deltas);
    return this.#finish(deltas);
  }

  removeEndpoint(name: string): EndpointDelta[] {
    const deltas = new DeltaJournal();
    const ep = this.#unindexEndpoint(name);
    if (ep === undefined) return [];
    this.#recompute(ep, deltas);
    this.#recomputeDependent(deltas);
    return this.#finish(deltas);
  }

  /** The compiled policy of an endpoint, or undefined when it is unknown or has no known identity. */
  result(name: string): EndpointPolicyResult | undefined {
    return this.#states.get(name)?.result(this.#capacity);
  }

  results(): EndpointPolicyResult[] {
    return [...this.#states.keys()].sort().map((n) => this.#states.get(n)!.result(this.#capacity));
  }

  /** For trace: the endpoint's compiled state (read-only). */
  state(name: string): EndpointState | undefined {
    return this.#states.get(name);
  }

  endpoint(name: string): EndpointInfo | undefined {
    return this.#endpoints.get(name);
  }

  /** The endpoint holding an address (pod IPs are unique across the mesh). */
  endpointByIp(ip: string): EndpointInfo | undefined {
    for (const ep of this.#endpoints.values()) if (ep.ips.includes(ip)) return ep;
    return undefined;
  }

  get prefixes(): readonly Prefix[] {
    return this.#prefixes;
  }

  policies(): PolicyInfo[] {
    const byPolicy = new Map<string, PolicyInfo>();
    for (const u of this.#units) {
      const id = `${u.ref.cluster}/${u.ref.kind}/${u.ref.namespace}/${u.ref.name}`;
      let info = byPolicy.get(id);
      if (info === undefined)
        byPolicy.set(id, (info = { ref: u.ref, selected: [], warnings: [], audit: u.audit }));
      info.selected.push(...(this.#selected.get(u.id) ?? []));
      info.warnings.push(...u.warnings);
    }
    for (const info of byPolicy.values()) info.selected = [...new Set(info.selected)].sort();
    return [...byPolicy.values()];
  }

  /** Entries over all endpoints, without materializing them. */
  get entryCount(): number {
    let n = 0;
    for (const s of this.#states.values()) n += s.map.size;
    return n;
  }

  get selectorCount(): number {
    return this.#cache.size;
  }
}
