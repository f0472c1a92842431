import { endpointName } from '../../common/index.js';
import type { CidrBlock, Prefix } from './cidr.js';
import { blockSelectsPrefix, parsePrefix } from './cidr.js';
import { DeltaJournal } from './delta-journal.js';
import { EndpointState } from './endpoint-state.js';
import type { PolicyUnit, Rule } from './model.js';
import { policyId } from './parse-policy.js';
import type { RuleContext } from './rule-entries.js';
import { countSlot, peerContributions, rulePeers, ruleTemplate } from './rule-entries.js';
import { SelectorCache } from './selector-cache.js';
import { UnitIndex } from './unit-index.js';
import type {
  CompileOptions,
  EndpointDelta,
  EndpointInfo,
  EndpointPolicyResult,
  IdentityInfo,
  PolicyInfo,
  PolicyRef,
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
 * keeps them current as policies, identities and endpoints come and go,
 * returning per-endpoint deltas. Pure (no I/O, no clock); not safe for
 * concurrent use. Results and deltas are fresh objects owned by the caller.
 */
export class PolicyEngine implements RuleContext {
  readonly #cache = new SelectorCache();
  readonly #index = new UnitIndex(this.#cache);
  readonly #capacityOf: (endpoint: EndpointInfo) => number;
  readonly #cidrIdentity: (prefix: string) => number | undefined;
  #prefixes: Prefix[] = [];
  readonly #identities = new Map<number, IdentityInfo>();
  readonly #endpoints = new Map<string, EndpointInfo>();
  /** live endpoints (identity known) by identity */
  readonly #byIdentity = new Map<number, EndpointInfo[]>();
  /** every endpoint's name by identity, live or not */
  readonly #allByIdentity = new Map<number, Set<string>>();
  readonly #states = new Map<string, EndpointState>();
  /** unit → names of the endpoints it selects */
  readonly #selected = new Map<PolicyUnit, Set<string>>();

  constructor(
    units: readonly PolicyUnit[],
    input: { identities: readonly IdentityInfo[]; endpoints: readonly EndpointInfo[] },
    opts: CompileOptions = {},
  ) {
    const capacity = opts.capacity ?? DEFAULT_CAPACITY;
    this.#capacityOf = opts.capacityOf ?? (() => capacity);
    this.#cidrIdentity = opts.cidrIdentity ?? (() => undefined);
    const byPolicy = new Map<string, PolicyUnit[]>();
    for (const u of units) {
      const id = policyId(u.ref);
      const list = byPolicy.get(id);
      if (list === undefined) byPolicy.set(id, [u]);
      else list.push(u);
    }
    for (const [id, list] of byPolicy) this.#setUnits(id, list);
    this.#prefixes = this.#currentPrefixes();
    for (const id of input.identities) {
      this.#identities.set(id.id, id);
      this.#index.indexIdentity(id.id, this.#cache.addIdentity(id.id, id.labels));
    }
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

  #setUnits(policy: string, units: readonly PolicyUnit[]): void {
    for (const u of this.#index.units(policy)) this.#selected.delete(u);
    this.#index.set(policy, units);
    for (const u of units) this.#selected.set(u, new Set());
  }

  #currentPrefixes(): Prefix[] {
    return [...this.#index.prefixes()].sort().map((p) => parsePrefix(p) as Prefix);
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
    for (const u of old?.units ?? []) this.#selected.get(u)?.delete(name);
    if (!this.#identities.has(ep.identity) || this.#endpoints.get(name) !== ep) {
      deltas?.replaced(name, old, undefined);
      this.#states.delete(name);
      return;
    }
    const units = this.#index.subjectsOf(ep.identity).filter((u) => u.ref.cluster === ep.cluster);
    const state = new EndpointState(ep, units);
    for (const u of units) {
      this.#selected.get(u)!.add(name);
      for (const rule of u.rules) {
        if (!state.applies(u, rule.section)) continue;
        const peers = rulePeers(rule, this);
        if (peers.errors.length > 0) state.unitErrors(u).push(...peers.errors);
        this.#addPeers(state, u, rule, peers.ids, 1);
      }
    }
    state.settle();
    deltas?.replaced(name, old, state);
    this.#states.set(name, state);
  }

  /**
   * Counts a rule's entries for these peers in (+1) or out (-1). Rules whose
   * keys do not depend on the peer's pods share one template: the hot path of
   * the full compile, with no allocation per entry.
   */
  #addPeers(
    state: EndpointState,
    u: PolicyUnit,
    rule: Rule,
    peers: ReadonlySet<number> | readonly number[],
    delta: 1 | -1,
  ): void {
    const t = ruleTemplate(state.info, u, rule);
    if (t !== undefined) {
      const n = 'size' in peers ? peers.size : peers.length;
      if (delta > 0) state.reserve((n * t.ports.length) / 3);
      const key = { direction: t.direction, identity: 0, protocol: 0, portLow: 0, portHigh: 0 };
      for (const peer of peers) {
        key.identity = peer;
        for (let i = 0; i < t.ports.length; i += 3) {
          key.protocol = t.ports[i]!;
          key.portLow = t.ports[i + 1]!;
          key.portHigh = t.ports[i + 2]!;
          state.count(key, t.slot, delta);
        }
      }
      return;
    }
    for (const peer of peers) {
      const errors: string[] = [];
      for (const c of peerContributions(state.info, u, rule, peer, this, errors))
        state.count(c, countSlot(c.verdict), delta);
      if (errors.length > 0) state.unitErrors(u).push(...errors);
    }
  }

  #finish(deltas: DeltaJournal): EndpointDelta[] {
    return deltas.finish(this.#states, (s) => s.errorList(this.#capacityOf(s.info)));
  }

  /** Adds or replaces an identity. Returns the endpoints whose policy changed. */
  upsertIdentity(identity: IdentityInfo): EndpointDelta[] {
    const deltas = new DeltaJournal();
    if (this.#identities.has(identity.id)) this.#dropIdentity(identity.id, deltas);
    this.#identities.set(identity.id, identity);
    const touched = this.#cache.addIdentity(identity.id, identity.labels);
    this.#index.indexIdentity(identity.id, touched);
    const owned = [...(this.#allByIdentity.get(identity.id) ?? [])].map((n) =>
      this.#endpoints.get(n)!,
    );
    if (owned.length > 0) this.#byIdentity.set(identity.id, owned);
    this.#peerDelta(identity.id, touched, deltas, 1);
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
    this.#index.forgetIdentity(id);
    const owned = this.#byIdentity.get(id) ?? [];
    this.#byIdentity.delete(id);
    for (const ep of owned) this.#recompute(ep, deltas);
    this.#peerDelta(id, touched, deltas, -1);
    if (owned.length > 0) this.#recomputeDependent(deltas);
  }

  /**
   * Counts identity `id` in or out as a peer of every rule that uses one of
   * the `touched` selectors, on every endpoint the rule's unit selects.
   * Rules whose entries depend on pods are patched the same way: an identity
   * with pods gets every such endpoint compiled again afterwards
   * (`#recomputeDependent`), and one without pods adds no pod-derived entries.
   */
  #peerDelta(id: number, touched: readonly string[], deltas: DeltaJournal, delta: 1 | -1): void {
    const seen = new Set<Rule>();
    const changed = new Set<string>();
    for (const key of touched) {
      for (const { unit, rule } of this.#index.peerUsers(key)) {
        if (seen.has(rule)) continue;
        seen.add(rule);
        for (const name of this.#selected.get(unit) ?? []) {
          const state = this.#states.get(name);
          if (
            state === undefined ||
            state.info.identity === id ||
            !state.applies(unit, rule.section)
          )
            continue;
          this.#addPeers(state, unit, rule, [id], delta);
          changed.add(name);
        }
      }
    }
    for (const name of changed) {
      const state = this.#states.get(name)!;
      state.settle(deltas.begin(name, state));
    }
  }

  #recomputeDependent(deltas: DeltaJournal): void {
    this.#recomputeSelectedBy(this.#index.dependent, deltas);
  }

  #recomputeSelectedBy(
    units: Iterable<PolicyUnit>,
    deltas: DeltaJournal,
    also?: Set<string>,
  ): void {
    const names = also ?? new Set<string>();
    for (const u of units) for (const n of this.#selected.get(u) ?? []) names.add(n);
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

  /**
   * Adds or replaces one policy: `units` are all the units of one
   * PolicyObject (`parsePolicy`), `ref` is needed only when there are none.
   * Only the endpoints the policy selects before or after are compiled again
   * (and, when the set of CIDR prefixes changes, those of policies with CIDR
   * peers). Returns the endpoints whose policy changed.
   */
  upsertPolicy(
    units: readonly PolicyUnit[],
    ref: PolicyRef | undefined = units[0]?.ref,
  ): EndpointDelta[] {
    if (ref === undefined) throw new Error('upsertPolicy: a policy without units needs its ref');
    const id = policyId(ref);
    for (const u of units) {
      if (policyId(u.ref) !== id)
        throw new Error(`upsertPolicy: unit ${u.id} is not of policy ${id}`);
    }
    const deltas = new DeltaJournal();
    const affected = new Set<string>();
    for (const u of this.#index.units(id))
      for (const n of this.#selected.get(u) ?? []) affected.add(n);
    const prefixesBefore = this.#prefixes.map((p) => p.text).join(',');
    this.#setUnits(id, units);
    for (const u of units) {
      for (const identity of this.#index.subjectMatches(u)) {
        for (const ep of this.#byIdentity.get(identity) ?? [])
          if (ep.cluster === u.ref.cluster) affected.add(endpointName(ep));
      }
    }
    this.#prefixes = this.#currentPrefixes();
    const prefixesChanged = this.#prefixes.map((p) => p.text).join(',') !== prefixesBefore;
    this.#recomputeSelectedBy(prefixesChanged ? this.#index.cidr : [], deltas, affected);
    return this.#finish(deltas);
  }

  /** Removes a policy (all its units); same deltas as `upsertPolicy`. */
  removePolicy(ref: PolicyRef): EndpointDelta[] {
    return this.upsertPolicy([], ref);
  }

  /** The compiled policy of an endpoint, or undefined when it is unknown or has no known identity. */
  result(name: string): EndpointPolicyResult | undefined {
    const state = this.#states.get(name);
    return state?.result(this.#capacityOf(state.info));
  }

  results(): EndpointPolicyResult[] {
    return [...this.#states.keys()].sort().map((n) => this.result(n)!);
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
    const out: PolicyInfo[] = [];
    for (const [, units] of this.#index.policies()) {
      const u0 = units[0]!;
      const selected = new Set<string>();
      const warnings: string[] = [];
      for (const u of units) {
        for (const n of this.#selected.get(u) ?? []) selected.add(n);
        warnings.push(...u.warnings);
      }
      out.push({ ref: u0.ref, selected: [...selected].sort(), warnings, audit: u0.audit });
    }
    return out;
  }

  /** Entries over all endpoints, without materializing them. */
  get entryCount(): number {
    let n = 0;
    for (const s of this.#states.values()) n += s.size;
    return n;
  }

  get selectorCount(): number {
    return this.#cache.size;
  }
}
