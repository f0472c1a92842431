import type { ChangeSetEvent, MeshObjectKind } from './records.js';
import { SUBJECT_EVENTS_PREFIX } from './records.js';

/**
 * A change set travels as one JetStream message per object kind it names,
 * on `meshplane.events.<cluster>.<kind>`, so a subscriber can follow one
 * kind (`meshplane.events.*.Pod`) and the server's per-cluster permission
 * (`meshplane.events.<cluster>.>`) covers every part. Each part is itself a
 * change set (same cluster, `full` and origin; only that kind's upserts and
 * deletes) and carries in headers which change set it belongs to and
 * `index/count`. The control plane commits a change set only once all its
 * parts have arrived, as one etcd transaction; parts of one change set are
 * published back to back, so a cluster's change sets never interleave in
 * the stream and their stream order is the cluster's order.
 */
export const CHANGE_SET_HEADER = 'Meshplane-Change-Set';
/** `index/count`, 1-based: `2/3` is the second of three parts */
export const CHANGE_SET_PART_HEADER = 'Meshplane-Part';
/** The subject token of the one part of a change set that names no object (e.g. a full change set of an empty cluster). */
export const NO_OBJECTS_TOKEN = 'Cluster';

/** Object kinds in the order a change set's parts are published. */
export const MESH_OBJECT_KINDS: readonly MeshObjectKind[] = [
  'Namespace',
  'ServiceAccount',
  'Pod',
  'Service',
  'ServiceExport',
  'NetworkPolicy',
  'CiliumNetworkPolicy',
  'CiliumClusterwideNetworkPolicy',
];

/** `meshplane.events.<cluster>` or, for one kind's part, `meshplane.events.<cluster>.<kind>`. */
export function eventsSubject(cluster: string, kind?: string): string {
  return kind === undefined
    ? `${SUBJECT_EVENTS_PREFIX}.${cluster}`
    : `${SUBJECT_EVENTS_PREFIX}.${cluster}.${kind}`;
}

/** The cluster and kind tokens of an events subject, or undefined when it is not one. */
export function parseEventsSubject(
  subject: string,
): { cluster: string; kind: string | undefined } | undefined {
  if (!subject.startsWith(`${SUBJECT_EVENTS_PREFIX}.`)) return undefined;
  const tokens = subject.slice(SUBJECT_EVENTS_PREFIX.length + 1).split('.');
  if (tokens.length > 2 || tokens[0] === '' || tokens[1] === '') return undefined;
  return { cluster: tokens[0]!, kind: tokens[1] };
}

export interface ChangeSetPart {
  /** the kind this part carries, or NO_OBJECTS_TOKEN */
  kind: string;
  /** 1-based */
  index: number;
  count: number;
  event: ChangeSetEvent;
}

/**
 * Splits a change set into one part per kind it names, in MESH_OBJECT_KINDS
 * order; a change set naming no object is one part. Joining the parts gives
 * back the change set (objects grouped by kind). Pure.
 */
export function splitChangeSet(ev: ChangeSetEvent): ChangeSetPart[] {
  const byKind = new Map<string, ChangeSetEvent>();
  const partOf = (kind: string): ChangeSetEvent => {
    let part = byKind.get(kind);
    if (!part) byKind.set(kind, (part = { ...ev, upserts: [], deletes: [] }));
    return part;
  };
  for (const o of ev.upserts) partOf(o.kind).upserts.push(o);
  for (const d of ev.deletes) partOf(d.kind).deletes.push(d);
  const kinds = MESH_OBJECT_KINDS.filter((k) => byKind.has(k));
  // Kinds outside the list (refused by the control plane) still travel, after the known ones.
  for (const k of byKind.keys())
    if (!kinds.includes(k as MeshObjectKind)) kinds.push(k as MeshObjectKind);
  if (kinds.length === 0) {
    return [
      { kind: NO_OBJECTS_TOKEN, index: 1, count: 1, event: { ...ev, upserts: [], deletes: [] } },
    ];
  }
  return kinds.map((kind, i) => ({
    kind,
    index: i + 1,
    count: kinds.length,
    event: byKind.get(kind)!,
  }));
}

/** The change set the parts (all of one change set, any order) make up: their objects, in index order. */
export function joinChangeSetParts(
  parts: readonly { index: number; event: ChangeSetEvent }[],
): ChangeSetEvent {
  const sorted = [...parts].sort((a, b) => a.index - b.index);
  const last = sorted.at(-1);
  if (!last) throw new Error('joinChangeSetParts: no parts');
  if (sorted.length === 1) return last.event;
  return {
    ...last.event,
    upserts: sorted.flatMap((p) => p.event.upserts),
    deletes: sorted.flatMap((p) => p.event.deletes),
  };
}

/** `index/count` as the part header writes it. */
export function formatPartHeader(index: number, count: number): string {
  return `${index}/${count}`;
}

/** The part header's index and count, or undefined when malformed (1 ≤ index ≤ count ≤ 64). */
export function parsePartHeader(v: string): { index: number; count: number } | undefined {
  const m = /^([1-9][0-9]?)\/([1-9][0-9]?)$/.exec(v);
  if (!m) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return index <= count && count <= 64 ? { index, count } : undefined;
}
