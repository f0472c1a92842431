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
import { hostPrefix, ShardedIpcache } from './ipcache.js';
import { NodeSnapshot, nodeKey } from './node-snapshot.js';
import { TYPE_ENDPOINT } from '../../proto/index.js';

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
  readonly #policy = new PolicyState();
  readonly #services = new ServicesState();
  readonly #cidrs = new Set<string>();
  /** endpoint -> why its policy cannot be enforced exactly */
  readonly #endpointErrors = new Map<string, string[]>();
  /** endpoint -> the identity its shipped resource was built for */
  readonly #endpointIdentity = new Map<string, number>();
  /** prefix -> [earlier owner, current owner] while two pods claim one IP */
  readonly #ipConflicts = new Map<string, [string, string]>();

  constructor(opts: SnapshotCacheOptions = {}) {
    this.#ipcache = new ShardedIpcache(opts.ipcacheShards ?? 256);
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
    if (shardsChanged) this.#shared = this.#sharedResources();

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

  #sharedResources(): Map<string, EncodedResource> {
    const shared = new Map<string, EncodedResource>();
    for (const r of this.#ipcache.resources()) shared.set(resourceKey(r.typeUrl, r.name), r);
    return shared;
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
      const previous = local.get(rkey);
      if (previous && this.#endpointIdentity.get(name) === pod.identity) return;
      policy = FAIL_CLOSED;
    } else {
      this.#endpointErrors.delete(name);
      if (result) policy = result;
    }
    const r = buildEndpointResource(pod, policy);
    this.#endpointIdentity.set(name, pod.identity);
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
    this.#endpointIdentity.delete(owner);
    touched.add(key);
  }
}
