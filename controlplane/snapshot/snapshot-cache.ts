import { resourceKey, type EncodedResource } from '../../common/index.js';
import { podName, type MeshModel, type ModelChange, type StoredPod } from '../model/index.js';
import {
  FAIL_CLOSED,
  UNENFORCED,
  buildEndpointResource,
  endpointResourceName,
  type EndpointPolicy,
} from './endpoint.js';
import { BucketedMap } from './bucketed-map.js';
import { PolicyState } from './policy-state.js';
import { ServicesState } from './services-state.js';
import { DEFAULT_IPCACHE_SHARDS, hostPrefix, ShardedIpcache } from './ipcache.js';
import { NodeSnapshot, nodeKey } from './node-snapshot.js';
import { TYPE_ENDPOINT } from '../../proto/index.js';
import { DEFAULT_CAPACITY } from '../policy/index.js';

const EMPTY_LOCAL: ReadonlyMap<string, EncodedResource> = new Map();

/** The outcome of one etcd revision that changed at least one node's snapshot. */
export interface MeshRevision {
  revision: number;
  /** when this replica observed the commit (its own clock) */
  commitTime: number;
  /** node keys whose expected snapshot changed at this revision */
  affected: string[];
  /** node keys that left the mesh at this revision */
  removed: string[];
  /** W3C traceparents of the change sets committed at this revision (for traces) */
  traceparents?: readonly string[];
}

export interface SnapshotCacheOptions {
  ipcacheShards?: number;
  /** policy map capacity per endpoint on nodes whose agent has not announced one (default 16,384) */
  policyCapacity?: number;
}

/**
 * Decides what each node should hold. Knows nothing of gRPC: the xDS server
 * reads `snapshot(node)` and subscribes to revisions. Fed by the owner with
 * the model and what changed; a change that alters no node's snapshot is not
 * a mesh revision and is not published.
 */
export class SnapshotCache {
  readonly #ipcache: ShardedIpcache;
  #shared: ReadonlyMap<string, EncodedResource> = new Map();
  /** node key -> local resources (endpoint policies of its pods) */
  /** node key -> its local resources; immutable maps replaced on change (published snapshots share them) */
  readonly #local = new Map<string, BucketedMap<EncodedResource>>();
  readonly #snapshots = new Map<string, NodeSnapshot>();
  #latest: { revision: number; commitTime: number } = { revision: 0, commitTime: 0 };
  readonly #listeners = new Set<(rev: MeshRevision) => void>();
  /** prefix -> the endpoint (cluster/namespace/pod) whose IP it is */
  readonly #ipOwners = new Map<string, string>();
  readonly #defaultCapacity: number;
  /** node key -> the policy map capacity per endpoint its agent announced */
  readonly #capacities = new Map<string, number>();
  readonly #policy = new PolicyState((ep) => this.capacityOf(ep));
  /** the model of the last update: a capacity announcement rebuilds its node's endpoints from it */
  #model: MeshModel | undefined;
  readonly #services = new ServicesState();
  readonly #cidrs = new Set<string>();
  /** endpoint -> why its policy cannot be enforced exactly */
  readonly #endpointErrors = new Map<string, string[]>();
  /** endpoint -> the identity and entry count of the resource built for it */
  readonly #shipped = new Map<string, { identity: number; entries: number }>();
  /** prefix -> [earlier owner, current owner] while two pods claim one IP */
  readonly #ipConflicts = new Map<string, [string, string]>();

  constructor(opts: SnapshotCacheOptions = {}) {
    this.#ipcache = new ShardedIpcache(opts.ipcacheShards ?? DEFAULT_IPCACHE_SHARDS);
    this.#defaultCapacity = opts.policyCapacity ?? DEFAULT_CAPACITY;
  }

  /** The policy map capacity of an endpoint: its node's announced one, else the default. */
  capacityOf(endpoint: { cluster: string; node?: string }): number {
    if (endpoint.node === undefined) return this.#defaultCapacity;
    return this.#capacities.get(nodeKey(endpoint.cluster, endpoint.node)) ?? this.#defaultCapacity;
  }

  /**
   * Records what a node's agent announced it holds per endpoint (0 or
   * undefined: nothing announced, the default applies) and recomputes its
   * endpoints' overflow errors. When that changes what the node should hold,
   * its snapshot is replaced in place: an announcement is not a mesh
   * revision and affects only this node, whose stream is just opening (call
   * this before its first push). Returns whether the snapshot changed.
   */
  setNodeCapacity(node: string, policyEntries: number | undefined): boolean {
    const before = this.#capacities.get(node) ?? this.#defaultCapacity;
    if (policyEntries === undefined || policyEntries === 0) this.#capacities.delete(node);
    else this.#capacities.set(node, policyEntries);
    const prev = this.#snapshots.get(node);
    const local = this.#local.get(node);
    if ((this.#capacities.get(node) ?? this.#defaultCapacity) === before) return false;
    if (!prev || !local || !this.#model) return false;
    const touched = new Set<string>();
    const prefix = resourceKey(TYPE_ENDPOINT, 'endpoint/');
    for (const key of [...local.keys()]) {
      const pod = this.#model.pod(key.slice(prefix.length));
      if (pod) this.#putEndpoint(pod, touched);
    }
    if (!touched.has(node)) return false;
    const [shared, services] = prev.parts;
    this.#snapshots.set(
      node,
      new NodeSnapshot(prev.cluster, prev.node, prev.revision, [
        shared!,
        services!,
        this.#local.get(node) ?? EMPTY_LOCAL,
      ]),
    );
    return true;
  }

  get latest(): { revision: number; commitTime: number } {
    return this.#latest;
  }

  /** The identity the mesh-wide ipcache maps a prefix to (e.g. "10.1.0.5/32"), if any. */
  identityOf(prefix: string): number | undefined {
    return this.#ipcache.get(prefix);
  }

  snapshot(node: string): NodeSnapshot | undefined {
    return this.#snapshots.get(node);
  }

  /** Compiled policy state (read-only use: status, `meshctl policies`, trace). */
  get policy(): PolicyState {
    return this.#policy;
  }

  /** ServiceImports and the exports' conditions, as derived at the latest revision. */
  get services(): ServicesState {
    return this.#services;
  }

  /** Endpoints whose policy cannot be enforced exactly, with the reasons. */
  endpointErrors(): ReadonlyMap<string, string[]> {
    return this.#endpointErrors;
  }

  /** IPs claimed by two endpoints at once (a source error the control plane can only report). */
  ipConflicts(): ReadonlyMap<string, readonly [string, string]> {
    return this.#ipConflicts;
  }

  nodes(): string[] {
    return [...this.#snapshots.keys()];
  }

  /** Listeners run synchronously after a revision is published; they must not throw. */
  subscribe(listener: (rev: MeshRevision) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Folds a model change committed at `revision` into the snapshots.
   * Returns the mesh revision, or undefined when no node's snapshot changed.
   */
  update(
    revision: number,
    commitTime: number,
    model: MeshModel,
    change: ModelChange,
    traceparents: readonly string[] = [],
  ): MeshRevision | undefined {
    this.#model = model;
    const touchedLocal = new Set<string>();
    for (const [, { before, after }] of change.pods) {
      if (before) this.#removePodIps(before);
      const moved = before && (!after || after.node !== before.node);
      if (moved) this.#removeEndpoint(before, touchedLocal);
      if (after) this.#addPod(after);
    }
    if (change.cidrs.size > 0) this.#syncCidrs(model);
    // Policy: recompile what the change touches, then rebuild those endpoints' resources.
    const touched = this.#policy.apply(model, change);
    const pods =
      touched === 'all'
        ? [...model.pods()]
        : [...touched].map((n) => model.pod(n)).filter((p) => p !== undefined);
    for (const pod of pods) this.#putEndpoint(pod, touchedLocal);
    const shardsChanged = this.#ipcache.flush().length > 0;
    const servicesChanged =
      change.objects > 0 || change.pods.size > 0 || change.clusters.size > 0
        ? this.#services.update(model, change)
        : new Set<string>();
    if (shardsChanged) this.#shared = this.#ipcache.published;

    // The node set follows the clusters' node lists.
    const wanted = new Set<string>();
    for (const c of model.clusters()) for (const n of c.nodes) wanted.add(nodeKey(c.name, n));
    const removed = [...this.#snapshots.keys()].filter((k) => !wanted.has(k));
    for (const k of removed) {
      this.#snapshots.delete(k);
      this.#local.delete(k);
    }

    const affected: string[] = [];
    for (const c of model.clusters()) {
      for (const n of c.nodes) {
        const key = nodeKey(c.name, n);
        const prev = this.#snapshots.get(key);
        if (prev && !shardsChanged && !servicesChanged.has(c.name) && !touchedLocal.has(key))
          continue;
        const local = this.#local.get(key) ?? EMPTY_LOCAL;
        const next = new NodeSnapshot(c.name, n, revision, [
          this.#shared,
          this.#services.resources(c.name),
          local,
        ]);
        // Parts are copy-on-write and replaced only when their content
        // changed, so the same parts mean the same snapshot.
        if (prev?.sameParts(next)) continue;
        this.#snapshots.set(key, next);
        affected.push(key);
      }
    }
    if (affected.length === 0 && removed.length === 0) return undefined;
    this.#latest = { revision, commitTime };
    const rev: MeshRevision = {
      revision,
      commitTime,
      affected,
      removed,
      ...(traceparents.length > 0 ? { traceparents } : {}),
    };
    for (const l of this.#listeners) l(rev);
    return rev;
  }

  #addPod(pod: StoredPod): void {
    const owner = podName(pod);
    for (const ip of pod.ips) {
      const prefix = hostPrefix(ip);
      const other = this.#ipOwners.get(prefix);
      // Pod IPs are unique across the mesh (DESIGN.md); sources refuse
      // duplicates within a folder, but two clusters can still collide. The
      // last writer wins and the collision is reported, never hidden.
      if (other !== undefined && other !== owner) this.#ipConflicts.set(prefix, [other, owner]);
      this.#ipOwners.set(prefix, owner);
      this.#ipcache.set(prefix, pod.identity);
    }
  }

  /** (Re)builds a local endpoint's resource from its compiled policy. */
  #putEndpoint(pod: StoredPod, touched: Set<string>): void {
    const key = nodeKey(pod.cluster, pod.node);
    const local = this.#local.get(key) ?? EMPTY_LOCAL;
    const rkey = resourceKey(TYPE_ENDPOINT, endpointResourceName(pod));
    const name = podName(pod);
    const result = pod.hostNetwork ? undefined : this.#policy.result(name);
    let policy: EndpointPolicy = UNENFORCED;
    if (result && result.errors.length > 0) {
      // Incomplete entries are never shipped: the node keeps what it has
      // (or, for a new endpoint, denies) and the error is reported.
      this.#endpointErrors.set(
        name,
        result.errors.map((e) => e.message),
      );
      // What the node has is kept only if it can hold it (its capacity may have shrunk).
      const shipped = this.#shipped.get(name);
      if (
        local.has(rkey) &&
        shipped?.identity === pod.identity &&
        shipped.entries <= this.capacityOf(pod)
      )
        return;
      policy = FAIL_CLOSED;
    } else {
      this.#endpointErrors.delete(name);
      if (result) policy = result;
    }
    const r = buildEndpointResource(pod, policy);
    this.#shipped.set(name, { identity: pod.identity, entries: policy.entries.length });
    if (local.get(rkey)?.version === r.version) return;
    this.#local.set(
      key,
      (this.#local.get(key) ?? BucketedMap.empty<EncodedResource>()).with(rkey, r),
    );
    touched.add(key);
  }

  /** Mesh-wide CIDR identities go into every ipcache (longest prefix wins over world). */
  #syncCidrs(model: MeshModel): void {
    const wanted = model.cidrIdentities();
    for (const prefix of this.#cidrs) {
      if (!wanted.has(prefix) && !this.#ipOwners.has(prefix)) this.#ipcache.delete(prefix);
    }
    this.#cidrs.clear();
    for (const [prefix, id] of wanted) {
      this.#cidrs.add(prefix);
      if (!this.#ipOwners.has(prefix)) this.#ipcache.set(prefix, id);
    }
  }

  #removePodIps(pod: StoredPod): void {
    const owner = podName(pod);
    for (const ip of pod.ips) {
      const prefix = hostPrefix(ip);
      if (this.#ipOwners.get(prefix) !== owner) continue;
      this.#ipOwners.delete(prefix);
      this.#ipConflicts.delete(prefix);
      this.#ipcache.delete(prefix);
    }
  }

  #removeEndpoint(pod: StoredPod, touched: Set<string>): void {
    const owner = podName(pod);
    const key = nodeKey(pod.cluster, pod.node);
    const rkey = resourceKey(TYPE_ENDPOINT, endpointResourceName(pod));
    const local = this.#local.get(key);
    if (local?.has(rkey)) this.#local.set(key, local.without(rkey));
    this.#endpointErrors.delete(owner);
    this.#shipped.delete(owner);
    touched.add(key);
  }
}
