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
 * The change set that takes the mesh from `published` to `desired`: the full
 * set when nothing was published yet; otherwise upserts of new and changed
 * objects and deletes of removed ones. Undefined when there is nothing to
 * send (also a changed node list or pod CIDR is something to send). Pure.
 */
export function diffChangeSet(
  published: ClusterState | undefined,
  desired: ClusterState,
  origin: string,
): ChangeSetEvent | undefined {
  const base = { apiVersion: 'meshplane/v1' as const, cluster: desired.spec, origin };
  if (published === undefined) {
    const upserts = [...desired.objects.values()].map((o) => o.object);
    return { ...base, full: true, upserts, deletes: [] };
  }
  const upserts: MeshObject[] = [];
  const deletes: ObjectRef[] = [];
  for (const [key, entry] of desired.objects) {
    const before = published.objects.get(key);
    // The same entry is the same object, unchanged; only others need their text compared.
    if (before !== entry && before?.text !== entry.text) upserts.push(entry.object);
  }
  for (const key of published.objects.keys()) {
    if (!desired.objects.has(key)) deletes.push(parseObjectKey(key));
  }
  const specChanged = canonicalJson(published.spec) !== canonicalJson(desired.spec);
  if (upserts.length === 0 && deletes.length === 0 && !specChanged) return undefined;
  return { ...base, full: false, upserts, deletes };
}
