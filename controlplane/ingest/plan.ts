import {
  MeshError,
  objectKey,
  type ChangeSetEvent,
  type ClusterSpec,
  type MeshObject,
  type PodObject,
} from '../../common/index.js';
import { identityLabels, labelsHash, type LabelFilter } from '../identity/index.js';
import type { StoredPod } from '../model/index.js';
import type { KeyLayout } from '../store/index.js';

/**
 * Where a change set sits in the event stream: the JetStream stream sequence,
 * qualified by the stream's creation time, so a stream that was lost and
 * recreated (sequences restart at 1) is not mistaken for a replay.
 */
export interface SourcePosition {
  epoch: string;
  sequence: number;
  /**
   * W3C traceparents of the change sets committed with this position, so
   * every replica's watch sees which source events a revision came from
   * (traces only; never compared).
   */
  traceparents?: string[];
}

/** Was `pos` applied already (a replay)? */
export function alreadyApplied(stored: SourcePosition | undefined, pos: SourcePosition): boolean {
  return stored !== undefined && stored.epoch === pos.epoch && stored.sequence >= pos.sequence;
}

export interface Membership {
  name: string;
  id: number;
  joinedAt: string;
}

/** What the committer read from etcd for one cluster before planning. */
export interface ClusterReadState {
  member: Membership | undefined;
  info: ClusterSpec | undefined;
  /** last applied source position; undefined = none */
  position: SourcePosition | undefined;
  /** stored namespaces: name -> labels */
  namespaces: Map<string, Record<string, string>>;
  /** stored object keys (only read for full change sets) */
  objectKeys: Set<string>;
  /** stored pods of namespaces whose labels this change set alters */
  podsOfChangedNamespaces: StoredPod[];
}

/** Refuses change sets of clusters that are not members, or that claim another id. */
export function checkMembership(ev: ChangeSetEvent, member: Membership | undefined): void {
  if (!member) {
    throw new MeshError(
      'NOT_MEMBER',
      `cluster ${ev.cluster.name} is not a member of the mesh; join it first (meshctl clusters join --name ${ev.cluster.name} --id ${ev.cluster.id})`,
    );
  }
  if (member.id !== ev.cluster.id) {
    throw new MeshError(
      'CLUSTER_CLASH',
      `cluster ${ev.cluster.name} joined the mesh with id ${member.id}; its source announced id ${ev.cluster.id}`,
    );
  }
}

/** Pods to (re)write in this change set: upserts, plus pods of namespaces whose labels change. */
export function podsToWrite(
  ev: ChangeSetEvent,
  read: ClusterReadState,
): { pods: PodObject[]; namespaces: Map<string, Record<string, string>> } {
  const namespaces = new Map(read.namespaces);
  const changed = new Set<string>();
  for (const o of ev.upserts) {
    if (o.kind !== 'Namespace') continue;
    if (JSON.stringify(namespaces.get(o.name)) !== JSON.stringify(o.labels)) changed.add(o.name);
    namespaces.set(o.name, o.labels);
  }
  for (const d of ev.deletes) if (d.kind === 'Namespace') namespaces.delete(d.name);
  const pods: PodObject[] = ev.upserts.filter((o): o is PodObject => o.kind === 'Pod');
  const upserted = new Set(pods.map((p) => objectKey(p)));
  for (const p of read.podsOfChangedNamespaces) {
    if (!changed.has(p.namespace) || upserted.has(objectKey(p))) continue;
    const { identity: _old, ...pod } = p;
    pods.push(pod);
  }
  return { pods, namespaces };
}

export function podIdentityLabels(
  cluster: string,
  pod: PodObject,
  namespaces: Map<string, Record<string, string>>,
  filter: LabelFilter,
): { labels: Record<string, string>; hash: string } {
  const labels = identityLabels(
    {
      cluster,
      namespace: pod.namespace,
      podLabels: pod.labels,
      namespaceLabels: namespaces.get(pod.namespace) ?? {},
      serviceAccount: pod.serviceAccount,
    },
    filter,
  );
  return { labels, hash: labelsHash(labels) };
}

export interface ChangeSetPlan {
  puts: { key: string; value: string }[];
  deletes: string[];
}

/**
 * Plans the etcd writes of one change set: cluster info, the source
 * position, objects (pods carry the identity resolved for their label set)
 * and deletions — for a full change set, of everything it did not name. Pure.
 */
export function planChangeSet(
  layout: KeyLayout,
  ev: ChangeSetEvent,
  position: SourcePosition,
  read: ClusterReadState,
  pods: { pod: PodObject; identity: number }[],
): ChangeSetPlan {
  const c = ev.cluster;
  const puts: { key: string; value: string }[] = [];
  const deletes = new Set<string>();
  if (JSON.stringify(read.info) !== JSON.stringify(c)) {
    puts.push({ key: layout.clusterInfo(c.name), value: JSON.stringify(c) });
  }
  puts.push({ key: layout.sourceSequence(c.name), value: JSON.stringify(position) });
  const written = new Set<string>();
  const put = (o: MeshObject | StoredPod): void => {
    puts.push({ key: layout.object(c.name, o), value: JSON.stringify(o) });
    written.add(objectKey(o));
  };
  for (const { pod, identity } of pods) put({ ...pod, identity });
  for (const o of ev.upserts) if (o.kind !== 'Pod') put(o);
  for (const d of ev.deletes) {
    if (!written.has(objectKey(d))) deletes.add(layout.object(c.name, d));
  }
  if (ev.full) {
    for (const k of read.objectKeys)
      if (!written.has(k)) deletes.add(`${layout.objects(c.name)}${k}`);
  }
  return { puts, deletes: [...deletes] };
}
