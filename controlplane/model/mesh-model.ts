import type { ClusterSpec, MeshObject, PodObject, PolicyObject } from '../../common/index.js';

const POLICY_KINDS = new Set([
  'NetworkPolicy',
  'CiliumNetworkPolicy',
  'CiliumClusterwideNetworkPolicy',
]);
function isPolicyKind(kind: string): boolean {
  return POLICY_KINDS.has(kind);
}
function isPolicy(o: { kind: string }): o is PolicyObject {
  return POLICY_KINDS.has(o.kind);
}
import { parseMeshKey, type KeyLayout, type KvEvent } from '../store/index.js';

/** A pod as stored: the source's object plus the identity the control plane gave it. */
export interface StoredPod extends PodObject {
  identity: number;
}

export type StoredObject = Exclude<MeshObject, PodObject> | StoredPod;

/** What one batch of etcd events changed, for the snapshot builder. */
export interface MemberRecord {
  name: string;
  id: number;
  joinedAt: string;
}

export interface IdentityRecord {
  id: number;
  cluster: string;
  /** canonical label text: sorted key=value lines */
  labels: string;
  hash: string;
}

export interface ModelChange {
  clusters: Set<string>;
  identities: Set<number>;
  /** endpoint name (cluster/namespace/pod) -> before and after */
  pods: Map<string, { before: StoredPod | undefined; after: StoredPod | undefined }>;
  /** policy objects (any kind) that changed, by cluster/Kind/namespace/name */
  policies: Set<string>;
  /** CIDR identities that appeared, changed or went */
  cidrs: Set<string>;
  /** any other object (services, exports, namespaces, ...) changed */
  objects: number;
}

export function emptyChange(): ModelChange {
  return {
    clusters: new Set(),
    identities: new Set(),
    pods: new Map(),
    policies: new Set(),
    cidrs: new Set(),
    objects: 0,
  };
}

export function podName(p: { cluster: string; namespace: string; name: string }): string {
  return `${p.cluster}/${p.namespace}/${p.name}`;
}

/**
 * The control plane's in-memory view of the mesh state in etcd, fed by the
 * etcd watch. Pure: no I/O, no clock. Not safe for concurrent mutation; the
 * owner applies one batch at a time.
 */
export class MeshModel {
  readonly #layout: KeyLayout;
  /** cluster info as its source last published it */
  readonly #clusters = new Map<string, ClusterSpec>();
  readonly #members = new Map<string, MemberRecord>();
  readonly #identities = new Map<number, IdentityRecord>();
  readonly #cidrs = new Map<string, number>();
  readonly #serviceIps = new Map<string, string>();
  readonly #stale = new Map<string, string>();
  /** identity -> endpoints holding it (reference count) */
  readonly #refs = new Map<number, number>();
  /** cluster -> objectKey -> object */
  readonly #objects = new Map<string, Map<string, StoredObject>>();
  readonly #pods = new Map<string, StoredPod>();

  constructor(layout: KeyLayout) {
    this.#layout = layout;
  }

  /**
   * Member clusters, with the nodes and pod CIDR their source announced (none
   * yet for a cluster that joined but whose source has not reported).
   */
  clusters(): ClusterSpec[] {
    return [...this.#members.values()]
      .map(
        (m) =>
          this.#clusters.get(m.name) ?? {
            name: m.name,
            id: m.id,
            nodes: [],
            podCIDR: `10.${m.id}.0.0/16`,
          },
      )
      .sort((a, b) => a.id - b.id);
  }

  cluster(name: string): ClusterSpec | undefined {
    return this.#members.has(name) ? this.clusters().find((c) => c.name === name) : undefined;
  }

  member(name: string): MemberRecord | undefined {
    return this.#members.get(name);
  }

  identities(): IterableIterator<IdentityRecord> {
    return this.#identities.values();
  }

  /** prefix -> its mesh-wide CIDR identity */
  cidrIdentities(): ReadonlyMap<string, number> {
    return this.#cidrs;
  }

  /** namespace/name -> clusterset IP */
  serviceIps(): ReadonlyMap<string, string> {
    return this.#serviceIps;
  }

  /** since when a cluster's source has been silent beyond its lease (undefined: it is live) */
  stale(cluster: string): string | undefined {
    return this.#stale.get(cluster);
  }

  /** every policy object of every member cluster */
  *policies(): IterableIterator<PolicyObject> {
    for (const objects of this.#objects.values()) {
      for (const o of objects.values()) if (isPolicy(o)) yield o;
    }
  }

  /** endpoints currently holding `id` */
  references(id: number): number {
    return this.#refs.get(id) ?? 0;
  }

  pods(): IterableIterator<StoredPod> {
    return this.#pods.values();
  }

  pod(name: string): StoredPod | undefined {
    return this.#pods.get(name);
  }

  objectsOf(cluster: string): ReadonlyMap<string, StoredObject> {
    return this.#objects.get(cluster) ?? new Map<string, StoredObject>();
  }

  /** Applies one batch of etcd events (one or more revisions) and says what changed. */
  apply(events: readonly KvEvent[], change: ModelChange = emptyChange()): ModelChange {
    for (const ev of events) this.#applyOne(ev, change);
    return change;
  }

  /**
   * Replaces the whole state with a fresh listing (after a watch had to be
   * restarted) and says what differs from before, as if it had been watched.
   */
  reset(events: readonly KvEvent[]): ModelChange {
    const change = emptyChange();
    const beforePods = new Map(this.#pods);
    for (const c of this.#clusters.keys()) change.clusters.add(c);
    this.#clusters.clear();
    this.#members.clear();
    this.#identities.clear();
    this.#refs.clear();
    this.#cidrs.clear();
    this.#serviceIps.clear();
    this.#stale.clear();
    this.#objects.clear();
    this.#pods.clear();
    this.apply(events, change);
    change.pods.clear();
    for (const [name, before] of beforePods) {
      const after = this.#pods.get(name);
      if (JSON.stringify(before) !== JSON.stringify(after))
        change.pods.set(name, { before, after });
    }
    for (const [name, after] of this.#pods) {
      if (!beforePods.has(name)) change.pods.set(name, { before: undefined, after });
    }
    change.objects += 1;
    change.policies.add('*');
    return change;
  }

  #ref(id: number, delta: number): void {
    const n = (this.#refs.get(id) ?? 0) + delta;
    if (n <= 0) this.#refs.delete(id);
    else this.#refs.set(id, n);
  }

  #applyOne(ev: KvEvent, change: ModelChange): void {
    const parsed = parseMeshKey(this.#layout, ev.key);
    switch (parsed.type) {
      case 'cluster-info':
        if (ev.type === 'put')
          this.#clusters.set(parsed.cluster, JSON.parse(ev.value) as ClusterSpec);
        else this.#clusters.delete(parsed.cluster);
        change.clusters.add(parsed.cluster);
        return;
      case 'member':
        if (ev.type === 'put')
          this.#members.set(parsed.cluster, JSON.parse(ev.value) as MemberRecord);
        else this.#members.delete(parsed.cluster);
        change.clusters.add(parsed.cluster);
        return;
      case 'identity':
        if (ev.type === 'put') {
          const v = JSON.parse(ev.value) as { labels: string; hash: string };
          this.#identities.set(parsed.id, {
            id: parsed.id,
            cluster: parsed.cluster,
            labels: v.labels,
            hash: v.hash,
          });
        } else {
          this.#identities.delete(parsed.id);
        }
        change.identities.add(parsed.id);
        return;
      case 'cidr-identity':
        if (ev.type === 'put')
          this.#cidrs.set(parsed.prefix, (JSON.parse(ev.value) as { id: number }).id);
        else this.#cidrs.delete(parsed.prefix);
        change.cidrs.add(parsed.prefix);
        return;
      case 'service-ip':
        if (ev.type === 'put')
          this.#serviceIps.set(parsed.service, (JSON.parse(ev.value) as { ip: string }).ip);
        else this.#serviceIps.delete(parsed.service);
        change.objects += 1;
        return;
      case 'stale':
        if (ev.type === 'put') this.#stale.set(parsed.cluster, ev.value);
        else this.#stale.delete(parsed.cluster);
        change.objects += 1;
        return;
      case 'object': {
        let objects = this.#objects.get(parsed.cluster);
        if (!objects) {
          objects = new Map();
          this.#objects.set(parsed.cluster, objects);
        }
        const before = objects.get(parsed.objectKey);
        const after = ev.type === 'put' ? (JSON.parse(ev.value) as StoredObject) : undefined;
        if (after) objects.set(parsed.objectKey, after);
        else objects.delete(parsed.objectKey);
        if (objects.size === 0) this.#objects.delete(parsed.cluster);
        const kind = after?.kind ?? before?.kind;
        if (kind === 'Pod') {
          const b = before as StoredPod | undefined;
          const a = after as StoredPod | undefined;
          const name = podName((a ?? b)!);
          if (b) this.#ref(b.identity, -1);
          if (a) {
            this.#pods.set(name, a);
            this.#ref(a.identity, 1);
          } else {
            this.#pods.delete(name);
          }
          const prev = change.pods.get(name);
          change.pods.set(name, { before: prev ? prev.before : b, after: a });
        } else if (kind && isPolicyKind(kind)) {
          change.policies.add(`${parsed.cluster}/${parsed.objectKey}`);
        } else {
          change.objects += 1;
        }
        return;
      }
      default:
        return;
    }
  }
}
