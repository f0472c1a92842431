import type { DashboardSource, NodeReadout, RevisionReadout } from './source.js';
import {
  MAX_ERRORS,
  NODE_STATE_CODES,
  SYNCED_AT_LATEST,
  compareNodes,
  nodeKey,
  type StateCode,
  type WireDelta,
  type WireError,
  type WireNode,
  type WireRevision,
  type WireState,
} from './wire.js';

/**
 * Pure: the dashboard document from what the source reports now, and the
 * difference between two documents. No clock of its own: `now` is passed in.
 */
export function readState(source: DashboardSource, seq: number, now: number): WireState {
  const latest = source.latest();
  const nodes: WireNode[] = [];
  for (const n of source.nodes()) nodes.push(nodeRow(n, latest.revision));
  nodes.sort(compareNodes);
  return {
    seq,
    now,
    revision: latest.revision,
    commitTime: latest.commitTime,
    bucketsMs: [...source.latencyBucketsMs],
    nodes,
    revisions: source.revisions().map(revisionRow),
    errors: [],
  };
}

export function nodeRow(n: NodeReadout, latestRevision: number): WireNode {
  const inSyncAtLatest = n.state === 'in-sync' && n.syncedRevision === latestRevision;
  return [
    n.cluster,
    n.name,
    NODE_STATE_CODES.indexOf(n.state) as StateCode,
    n.ackedRevision,
    inSyncAtLatest ? SYNCED_AT_LATEST : n.syncedRevision,
    n.since,
    n.pendingSince,
    n.error,
  ];
}

function revisionRow(r: RevisionReadout): WireRevision {
  return [
    r.revision,
    r.commitTime,
    r.affected,
    r.synced,
    r.nacked,
    r.acks,
    r.skewWindowMs,
    [...r.latencyCounts],
  ];
}

const sameTuple = (a: readonly unknown[], b: readonly unknown[]): boolean =>
  a.length === b.length &&
  a.every((v, i) =>
    Array.isArray(v) ? sameTuple(v as unknown[], b[i] as unknown[]) : Object.is(v, b[i]),
  );

/**
 * What changed from `prev` to `next` (which must carry prev.seq + 1), with
 * the errors that appeared: a node that entered `nacked` or `diverged`, or
 * whose error text changed while in one of them. `next.errors` is filled in
 * (newest first, bounded). Returns undefined when nothing a page shows changed.
 */
export function diffState(prev: WireState, next: WireState): WireDelta | undefined {
  const before = new Map(prev.nodes.map((n) => [nodeKey(n[0], n[1]), n]));
  const nodes: WireNode[] = [];
  const errors: WireError[] = [];
  for (const n of next.nodes) {
    const key = nodeKey(n[0], n[1]);
    const old = before.get(key);
    before.delete(key);
    if (old && sameTuple(old, n)) continue;
    nodes.push(n);
    const state = NODE_STATE_CODES[n[2]];
    if (
      (state === 'nacked' || state === 'diverged') &&
      (old === undefined || old[2] !== n[2] || old[7] !== n[7])
    ) {
      errors.push([n[5] || next.now, n[0], n[1], state, n[7]]);
    }
  }
  const removed = [...before.values()].map((n): [string, string] => [n[0], n[1]]);
  const oldRevisions = new Map(prev.revisions.map((r) => [r[0], r]));
  const revisions: WireRevision[] = [];
  for (const r of next.revisions) {
    const old = oldRevisions.get(r[0]);
    oldRevisions.delete(r[0]);
    if (!old || !sameTuple(old, r)) revisions.push(r);
  }
  const droppedRevisions = [...oldRevisions.keys()];
  errors.sort((a, b) => b[0] - a[0]);
  next.errors = [...errors, ...prev.errors].slice(0, MAX_ERRORS);
  if (
    nodes.length === 0 &&
    removed.length === 0 &&
    revisions.length === 0 &&
    droppedRevisions.length === 0 &&
    next.revision === prev.revision &&
    next.commitTime === prev.commitTime
  ) {
    return undefined;
  }
  return {
    seq: next.seq,
    now: next.now,
    revision: next.revision,
    commitTime: next.commitTime,
    nodes,
    removed,
    revisions,
    droppedRevisions,
    errors,
  };
}
