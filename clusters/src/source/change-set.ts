import type { ChangeSetEvent, ClusterSpec, MeshObject, ObjectRef } from '../../../common/index.js';
import { objectKey, parseObjectKey } from '../../../common/index.js';
import { canonicalJson } from './canonical.js';

/** A cluster's state as a source sees it: its spec and its objects by key, with their canonical text. */
export interface ClusterState {
  readonly spec: ClusterSpec;
  readonly objects: ReadonlyMap<string, { readonly object: MeshObject; readonly text: string }>;
}

/**
 * The state of `objects`. With `previous`, an object that is the very same
 * object as there (ClusterFolderLoader keeps unchanged objects' identity)
 * takes its entry as it is: canonical text of every object on every save was
 * the largest cost after parsing. Objects must not be mutated once in a state.
 */
export function clusterState(
  spec: ClusterSpec,
  objects: readonly MeshObject[],
  previous?: ClusterState,
): ClusterState {
  const byKey = new Map<string, { object: MeshObject; text: string }>();
  for (const object of objects) {
    const key = objectKey(object);
    const before = previous?.objects.get(key);
    byKey.set(key, before?.object === object ? before : { object, text: canonicalJson(object) });
  }
  return { spec, objects: byKey };
}

/**
 * `previous` with objects replaced or added (`upserted`) and removed (keys):
 * the same state clusterState would build from the whole new object list,
 * for what a load reports as changed (ClusterFolderLoader's `lastLoad`).
 * `previous` is left as it is (the publisher may hold it).
 */
export function patchClusterState(
  previous: ClusterState,
  spec: ClusterSpec,
  upserted: readonly MeshObject[],
  removed: readonly string[],
): ClusterState {
  const byKey = new Map(previous.objects);
  for (const key of removed) byKey.delete(key);
  for (const object of upserted) {
    byKey.set(objectKey(object), { object, text: canonicalJson(object) });
  }
  return { spec, objects: byKey };
}

/**
 * What a change set whose publish failed may or may not have changed in the
 * mesh (its PubAck can be lost after the stream stored it): its objects'
 * keys, and the cluster spec.
 */
export interface Uncertain {
  readonly keys: ReadonlySet<string>;
  readonly spec: boolean;
}

/**
 * The change set that takes the mesh from `published` to `desired`: the full
 * set when nothing was published yet; otherwise upserts of new and changed
 * objects and deletes of removed ones. Undefined when there is nothing to
 * send (also a changed node list or pod CIDR is something to send).
 * `uncertain`: what failed publishes may have changed besides — those keys
 * are sent too (their desired value, or a delete) and the spec counts as
 * changed, so the result is right whether or not they were stored. Pure.
 */
export function diffChangeSet(
  published: ClusterState | undefined,
  desired: ClusterState,
  origin: string,
  uncertain?: Uncertain,
): ChangeSetEvent | undefined {
  const base = { apiVersion: 'meshplane/v1' as const, cluster: desired.spec, origin };
  if (published === undefined) {
    const upserts = byKey([...desired.objects].map(([key, o]) => [key, o.object] as const));
    return { ...base, full: true, upserts, deletes: [] };
  }
  const changed: (readonly [string, MeshObject])[] = [];
  const gone: (readonly [string, ObjectRef])[] = [];
  for (const [key, entry] of desired.objects) {
    const before = published.objects.get(key);
    // The same entry is the same object, unchanged; only others need their text compared.
    if ((before !== entry && before?.text !== entry.text) || uncertain?.keys.has(key))
      changed.push([key, entry.object]);
  }
  for (const key of published.objects.keys()) {
    if (!desired.objects.has(key)) gone.push([key, parseObjectKey(key)]);
  }
  for (const key of uncertain?.keys ?? []) {
    if (!desired.objects.has(key) && !published.objects.has(key))
      gone.push([key, parseObjectKey(key)]);
  }
  const upserts = byKey(changed);
  const deletes = byKey(gone);
  const specChanged =
    uncertain?.spec === true || canonicalJson(published.spec) !== canonicalJson(desired.spec);
  if (upserts.length === 0 && deletes.length === 0 && !specChanged) return undefined;
  return { ...base, full: false, upserts, deletes };
}

/** The values in key order (a patched state's map is not in key order). */
function byKey<T>(entries: (readonly [string, T])[]): T[] {
  let sorted = true;
  for (let i = 1; i < entries.length && sorted; i++) sorted = entries[i - 1]![0] < entries[i]![0];
  if (!sorted) entries.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return entries.map((e) => e[1]);
}
