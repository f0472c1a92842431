import { compareStrings } from '../../common/index.js';
import { NODE_STATES, stateOf, type NodeFacts, type NodeStateName } from './node-state.js';

/** What a node currently adds to its cluster's counts (so it can be taken out again). */
interface Counted {
  state: NodeStateName;
  pendingSince: number;
  syncedRevision: number;
}

/** A cluster's skew figures at the latest revision, without its node list. */
export interface ClusterCounts {
  name: string;
  nodes: number;
  states: Record<NodeStateName, number>;
  /** nodes whose syncedRevision is below the latest revision */
  pending: number;
  /** the earliest commit time among its nodes' oldest unsynced revisions; 0 = none behind */
  oldestPendingSince: number;
  /** now − oldestPendingSince: the lag of its most-behind node (0 when none is behind) */
  ageMs: number;
  /** the lowest syncedRevision of its nodes (the latest revision when it has none) */
  syncedRevision: number;
}

function addCount(m: Map<number, number>, key: number, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n === 0) m.delete(key);
  else m.set(key, n);
}

function minKey(m: Map<number, number>, skipZero: boolean): number | undefined {
  let min: number | undefined;
  for (const k of m.keys()) if ((!skipZero || k !== 0) && (min === undefined || k < min)) min = k;
  return min;
}

/**
 * One cluster's nodes with their counts kept up to date as nodes change
 * (`recount` after every change to a node's facts), so reading the cluster's
 * skew costs O(distinct revisions), never a scan of its nodes; and its nodes
 * in name order, sorted again only when a node joins or leaves.
 * Pure bookkeeping, single-threaded like the tracker that owns it.
 */
export class ClusterNodes {
  readonly name: string;
  readonly #nodes = new Map<string, NodeFacts>();
  readonly #counted = new Map<NodeFacts, Counted>();
  readonly #states = new Map<NodeStateName, number>();
  /** pendingSince → nodes (0 = not behind) */
  readonly #pendingSince = new Map<number, number>();
  /** syncedRevision → nodes */
  readonly #synced = new Map<number, number>();
  #sorted: NodeFacts[] | undefined = [];

  constructor(name: string) {
    this.name = name;
  }

  get size(): number {
    return this.#nodes.size;
  }

  add(f: NodeFacts, latestRevision: number): void {
    this.#nodes.set(f.node, f);
    this.#sorted = undefined;
    this.recount(f, latestRevision);
  }

  remove(f: NodeFacts): void {
    if (this.#nodes.get(f.node) !== f) return;
    this.#nodes.delete(f.node);
    this.#sorted = undefined;
    this.#uncount(f);
  }

  /** Takes the node's current facts into the counts; call after any change to them. */
  recount(f: NodeFacts, latestRevision: number): void {
    const state = stateOf(f, latestRevision);
    // As in the node's view: an in-sync node has no lag.
    const pendingSince = state === 'in-sync' ? 0 : f.pendingSince;
    const syncedRevision = f.syncedRevision;
    let c = this.#counted.get(f);
    if (!c) {
      c = { state, pendingSince, syncedRevision };
      this.#counted.set(f, c);
      this.#states.set(state, (this.#states.get(state) ?? 0) + 1);
      addCount(this.#pendingSince, pendingSince, 1);
      addCount(this.#synced, syncedRevision, 1);
      return;
    }
    // Only what moved (most calls move one figure or none).
    if (c.state !== state) {
      this.#states.set(c.state, (this.#states.get(c.state) ?? 1) - 1);
      this.#states.set(state, (this.#states.get(state) ?? 0) + 1);
      c.state = state;
    }
    if (c.pendingSince !== pendingSince) {
      addCount(this.#pendingSince, c.pendingSince, -1);
      addCount(this.#pendingSince, pendingSince, 1);
      c.pendingSince = pendingSince;
    }
    if (c.syncedRevision !== syncedRevision) {
      addCount(this.#synced, c.syncedRevision, -1);
      addCount(this.#synced, syncedRevision, 1);
      c.syncedRevision = syncedRevision;
    }
  }

  #uncount(f: NodeFacts): void {
    const c = this.#counted.get(f);
    if (!c) return;
    this.#counted.delete(f);
    this.#states.set(c.state, (this.#states.get(c.state) ?? 1) - 1);
    addCount(this.#pendingSince, c.pendingSince, -1);
    addCount(this.#synced, c.syncedRevision, -1);
  }

  /** The nodes in name order (code-point order); the array is shared: do not modify it. */
  sorted(): readonly NodeFacts[] {
    this.#sorted ??= [...this.#nodes.values()].sort((a, b) => compareStrings(a.node, b.node));
    return this.#sorted;
  }

  /** Nodes whose syncedRevision is below `revision`: O(distinct synced revisions). */
  behind(revision: number): number {
    let n = 0;
    for (const [synced, nodes] of this.#synced) if (synced < revision) n += nodes;
    return n;
  }

  counts(latestRevision: number, now: number): ClusterCounts {
    const states = Object.fromEntries(
      NODE_STATES.map((s) => [s, this.#states.get(s) ?? 0]),
    ) as Record<NodeStateName, number>;
    const oldestPendingSince = minKey(this.#pendingSince, true) ?? 0;
    return {
      name: this.name,
      nodes: this.#nodes.size,
      states,
      pending: this.#nodes.size - (this.#synced.get(latestRevision) ?? 0),
      oldestPendingSince,
      ageMs: oldestPendingSince > 0 ? Math.max(0, now - oldestPendingSince) : 0,
      syncedRevision: minKey(this.#synced, false) ?? latestRevision,
    };
  }
}
