/**
 * What the dashboard server sends the page over SSE, shared by both sides
 * (pure types and functions: no DOM, no Node). Node and revision rows are
 * tuples to keep deltas small with 1,000s of nodes; the field order is the
 * contract between server and page.
 *
 * A connection starts with one `state` event (the whole document); after it
 * each `delta` event carries `seq` = previous + 1 and only what changed. A
 * page that sees a gap reconnects and starts from a new `state`.
 */

/** Index in NODE_STATE_CODES; the page colours by it. */
export type StateCode = 0 | 1 | 2 | 3 | 4;
export const NODE_STATE_CODES = [
  'in-sync',
  'pending',
  'nacked',
  'diverged',
  'disconnected',
] as const;

/**
 * [cluster, node, state, ackedRevision, syncedRevision, since, pendingSince, error]
 *
 * An in-sync node is synced at the latest revision by definition; its row
 * carries SYNCED_AT_LATEST instead, so the rows of the many nodes a revision
 * does not affect stay unchanged (and unsent) when the revision moves. Read
 * it with `syncedRevisionOf`.
 */
export type WireNode = [string, string, StateCode, number, number, number, number, string];

/**
 * [revision, commitTime, affected, synced, nacked, acks, skewWindowMs, latencyCounts]
 * (commitTime epoch ms on the server's clock; see RevisionReadout)
 */
export type WireRevision = [number, number, number, number, number, number, number, number[]];

/** [at, cluster, node, state ('nacked' | 'diverged'), message] — newest first */
export type WireError = [number, string, string, 'nacked' | 'diverged', string];

export interface WireState {
  seq: number;
  /** server clock when this was built (the page ages `since` values against it) */
  now: number;
  revision: number;
  commitTime: number;
  /** upper bounds (ms) of the latency buckets; counts have one more (overflow) */
  bucketsMs: number[];
  nodes: WireNode[];
  revisions: WireRevision[];
  errors: WireError[];
}

export interface WireDelta {
  seq: number;
  now: number;
  revision: number;
  commitTime: number;
  /** new or changed node rows */
  nodes: WireNode[];
  /** [cluster, node] of rows that left */
  removed: [string, string][];
  /** new or changed revision rows; the page keeps the newest `keep` */
  revisions: WireRevision[];
  /** revisions that fell out of the retained window */
  droppedRevisions: number[];
  /** errors that appeared since the last update, newest first */
  errors: WireError[];
}

export const SYNCED_AT_LATEST = -1;

/** A row's synced revision, given the revision of the state it belongs to. */
export const syncedRevisionOf = (n: WireNode, latestRevision: number): number =>
  n[4] === SYNCED_AT_LATEST ? latestRevision : n[4];

export const nodeKey = (cluster: string, node: string): string => `${cluster}/${node}`;

/** Bounded number of recent errors a state carries. */
export const MAX_ERRORS = 50;

/**
 * The state after `delta`, or undefined when the delta does not follow
 * `state` (a gap: start over from a fresh `state`). Pure: `state` is not
 * modified.
 */
export function applyDelta(state: WireState, delta: WireDelta): WireState | undefined {
  if (delta.seq !== state.seq + 1) return undefined;
  const nodes = new Map(state.nodes.map((n) => [nodeKey(n[0], n[1]), n]));
  for (const [c, n] of delta.removed) nodes.delete(nodeKey(c, n));
  for (const n of delta.nodes) nodes.set(nodeKey(n[0], n[1]), n);
  const revisions = new Map(state.revisions.map((r) => [r[0], r]));
  for (const r of delta.droppedRevisions) revisions.delete(r);
  for (const r of delta.revisions) revisions.set(r[0], r);
  return {
    seq: delta.seq,
    now: delta.now,
    revision: delta.revision,
    commitTime: delta.commitTime,
    bucketsMs: state.bucketsMs,
    nodes: [...nodes.values()].sort(compareNodes),
    revisions: [...revisions.values()].sort((a, b) => b[0] - a[0]),
    errors: [...delta.errors, ...state.errors].slice(0, MAX_ERRORS),
  };
}

export function compareNodes(a: WireNode, b: WireNode): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}
