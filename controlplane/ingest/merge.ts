import {
  objectKey,
  type ChangeSetEvent,
  type MeshObject,
  type ObjectRef,
} from '../../common/index.js';

/**
 * Folds consecutive change sets of one cluster into one, as if they had been
 * applied in order: a later object wins, a delete removes, a full change set
 * discards everything before it. Committing the fold in one transaction is
 * equivalent to committing each in turn. Pure.
 */
export function mergeChangeSets(events: readonly ChangeSetEvent[]): ChangeSetEvent {
  const last = events.at(-1);
  if (!last) throw new Error('mergeChangeSets: no change sets');
  if (events.length === 1) return last;
  let full = false;
  const objects = new Map<string, MeshObject | ObjectRef | null>();
  for (const ev of events) {
    if (ev.full) {
      full = true;
      objects.clear();
    }
    for (const u of ev.upserts) objects.set(objectKey(u), u);
    for (const d of ev.deletes) {
      // After a full set, absence already deletes; before one, deletes must be kept.
      objects.set(
        objectKey(d),
        full ? null : { kind: d.kind, namespace: d.namespace, name: d.name },
      );
    }
  }
  const upserts: MeshObject[] = [];
  const deletes: ObjectRef[] = [];
  for (const v of objects.values()) {
    if (v === null) continue;
    if ('cluster' in v) upserts.push(v);
    else deletes.push(v);
  }
  return { ...last, full, upserts, deletes };
}
