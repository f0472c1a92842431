import {
  MeshError,
  objectKey,
  type ChangeSetEvent,
  type ClusterSpec,
  type MeshObject,
  type PodObject,
} from '../../common/index.js';
import {
  CLUSTER_LOCAL_MIN,
  clusterIdentity,
  identityLabels,
  labelsHash,
  type LabelFilter,
} from '../identity/index.js';
import type { StoredPod } from '../model/index.js';
import type { KeyLayout } from '../store/index.js';

/** What the committer read from etcd for one cluster before planning. */
export interface ClusterReadState {
  info: ClusterSpec | undefined;
  /** last applied source position; undefined = none */
  position: SourcePosition | undefined;
  /** next free cluster-local identity number */
  nextLocal: number;
  /** cluster name that holds this cluster's id in the mesh, if any */
  idOwner: string | undefined;
  /** stored namespaces: name -> labels */
  namespaces: Map<string, Record<string, string>>;
  /** stored identities: labels hash -> identity */
  identities: Map<string, number>;
  /** stored object keys (only read for full change sets) */
  objectKeys: Set<string>;
  /** stored pods of namespaces whose labels this change set alters */
  podsOfChangedNamespaces: StoredPod[];
}

/**
 * Where a change set sits in the event stream: the JetStream stream sequence,
 * qualified by the stream's creation time, so a stream that was lost and
 * recreated (sequences restart at 1) is not mistaken for a replay.
 */
export interface SourcePosition {
  epoch: string;
  sequence: number;
}

/** Was `pos` applied already (a replay)? */
export function alreadyApplied(stored: SourcePosition | undefined, pos: SourcePosition): boolean {
  return stored !== undefined && stored.epoch === pos.epoch && stored.sequence >= pos.sequence;
}

export interface ChangeSetPlan {
  puts: { key: string; value: string }[];
  deletes: string[];
  /** identity keys created by this plan: the commit requires they do not exist yet */
  createdKeys: string[];
  /** identities newly allocated, for logs and metrics */
  allocated: number;
}

/**
 * Plans the etcd writes of one change set: cluster registration, identity
 * allocation for pods (create-if-absent on the canonical label set, numbers
 * from the cluster's counter) and object puts/deletes. Pure.
 */
export function planChangeSet(
  layout: KeyLayout,
  ev: ChangeSetEvent,
  position: SourcePosition,
  read: ClusterReadState,
  filter: LabelFilter,
): ChangeSetPlan {
  const c = ev.cluster;
  if (read.info && read.info.id !== c.id) {
    throw new MeshError(
      'CLUSTER_CLASH',
      `cluster ${c.name} is a member with id ${read.info.id}; a source announced id ${c.id}`,
    );
  }
  if (read.idOwner !== undefined && read.idOwner !== c.name) {
    throw new MeshError(
      'CLUSTER_CLASH',
      `cluster id ${c.id} already belongs to cluster ${read.idOwner}; ${c.name} cannot join with it`,
    );
  }
  const puts: { key: string; value: string }[] = [];
  const createdKeys: string[] = [];
  const deletes = new Set<string>();

  if (JSON.stringify(read.info) !== JSON.stringify(c)) {
    puts.push({ key: layout.clusterInfo(c.name), value: JSON.stringify(c) });
  }
  puts.push({ key: layout.sourceSequence(c.name), value: JSON.stringify(position) });

  // Namespace labels after this change set, for identity labels.
  const namespaces = new Map(read.namespaces);
  const changedNamespaces = new Set<string>();
  for (const o of ev.upserts) {
    if (o.kind !== 'Namespace') continue;
    if (JSON.stringify(namespaces.get(o.name)) !== JSON.stringify(o.labels))
      changedNamespaces.add(o.name);
    namespaces.set(o.name, o.labels);
  }
  for (const d of ev.deletes) if (d.kind === 'Namespace') namespaces.delete(d.name);

  const identities = new Map(read.identities);
  let next = Math.max(read.nextLocal, CLUSTER_LOCAL_MIN);
  let allocated = 0;
  const identityOf = (pod: PodObject): number => {
    const labels = identityLabels(
      {
        cluster: c.name,
        namespace: pod.namespace,
        podLabels: pod.labels,
        namespaceLabels: namespaces.get(pod.namespace) ?? {},
        serviceAccount: pod.serviceAccount,
      },
      filter,
    );
    const hash = labelsHash(labels);
    const known = identities.get(hash);
    if (known !== undefined) return known;
    const id = clusterIdentity(c.id, next);
    next += 1;
    allocated += 1;
    identities.set(hash, id);
    const byLabels = layout.identityByLabels(c.name, hash);
    const byId = layout.identityById(c.name, id);
    puts.push({ key: byLabels, value: JSON.stringify({ id, labels }) });
    puts.push({ key: byId, value: JSON.stringify({ labels, hash }) });
    createdKeys.push(byLabels, byId);
    return id;
  };

  const upserted = new Set<string>();
  const putObject = (o: MeshObject): void => {
    const stored: MeshObject | StoredPod = o.kind === 'Pod' ? { ...o, identity: identityOf(o) } : o;
    puts.push({ key: layout.object(c.name, o), value: JSON.stringify(stored) });
    upserted.add(objectKey(o));
  };
  for (const o of ev.upserts) putObject(o);
  // Pods whose namespace labels changed get the identity of their new label set.
  for (const p of read.podsOfChangedNamespaces) {
    if (!changedNamespaces.has(p.namespace) || upserted.has(objectKey(p))) continue;
    const { identity: _old, ...pod } = p;
    putObject(pod);
  }
  for (const d of ev.deletes) {
    if (!upserted.has(objectKey(d))) deletes.add(layout.object(c.name, d));
  }
  if (ev.full) {
    for (const k of read.objectKeys)
      if (!upserted.has(k)) deletes.add(`${layout.objects(c.name)}${k}`);
  }
  if (allocated > 0) puts.push({ key: layout.identityNext(c.name), value: String(next) });
  return { puts, deletes: [...deletes], createdKeys, allocated };
}
