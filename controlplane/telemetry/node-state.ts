/**
 * Node states as DESIGN.md defines them, derived from O(1) facts per node.
 * Pure: the caller passes `now` and the latest mesh revision.
 */
export type NodeStateName = 'in-sync' | 'pending' | 'nacked' | 'diverged' | 'disconnected';

export const NODE_STATES: readonly NodeStateName[] = [
  'in-sync',
  'pending',
  'nacked',
  'diverged',
  'disconnected',
];

/** One applied revision of a node, as its ACK reported it (kept in a small fixed ring). */
export interface NodeApply {
  revision: number;
  /** receipt of the ACK on this replica's clock (epoch ms) */
  ackedAt: number;
  /** commit of the oldest revision the ACK covered → ACK receipt, this replica's clock */
  propagationMs: number;
  /** agent-reported receipt of the last part → state in the datapath, the agent's clock */
  applyMs: number;
}

/** How many applies a node remembers (constant, so state per node stays O(1)). */
export const NODE_HISTORY = 16;

export interface NodeFacts {
  cluster: string;
  node: string;
  connected: boolean;
  /** when the stream opened or closed last; 0 = never connected */
  connectionChangedAt: number;
  ackedRevision: number;
  /** receipt of the last ACK (epoch ms); 0 = none */
  ackedAt: number;
  syncedRevision: number;
  /** commit time of the oldest affected revision not yet synced; 0 = none */
  pendingSince: number;
  /** the oldest affected revision not yet synced; 0 = none */
  pendingRevision: number;
  /** the last push was NACKed and nothing newer was accepted */
  nack: { message: string; revision: number; at: number } | undefined;
  /** reported digest differs from the one expected for what it ACKed */
  divergence: { reported: string; expected: string; at: number } | undefined;
  digest: string;
  /** when the node last became in-sync */
  inSyncSince: number;
  /** the last applies, oldest first, at most NODE_HISTORY */
  history: NodeApply[];
}

export function newNodeFacts(cluster: string, node: string): NodeFacts {
  return {
    cluster,
    node,
    connected: false,
    connectionChangedAt: 0,
    ackedRevision: 0,
    ackedAt: 0,
    syncedRevision: 0,
    pendingSince: 0,
    pendingRevision: 0,
    nack: undefined,
    divergence: undefined,
    digest: '',
    inSyncSince: 0,
    history: [],
  };
}

export function recordApply(f: NodeFacts, a: NodeApply): void {
  f.history.push(a);
  if (f.history.length > NODE_HISTORY) f.history.shift();
}

export interface NodeView {
  cluster: string;
  name: string;
  state: NodeStateName;
  ackedRevision: number;
  syncedRevision: number;
  /** how long the node has been behind: now − commit of its oldest unsynced affected revision */
  lagMs: number;
  /** when the node entered this state (epoch ms); 0 = unknown (never connected) */
  since: number;
  error: string;
  digest: string;
}

/** The node's state at `latestRevision` (see DESIGN.md); independent of the clock. */
export function stateOf(f: NodeFacts, latestRevision: number): NodeStateName {
  if (!f.connected) return 'disconnected';
  if (f.nack) return 'nacked';
  if (f.divergence) return 'diverged';
  return f.syncedRevision >= latestRevision ? 'in-sync' : 'pending';
}

export function viewOf(f: NodeFacts, latestRevision: number, now: number): NodeView {
  const state = stateOf(f, latestRevision);
  const lagMs = state !== 'in-sync' && f.pendingSince > 0 ? Math.max(0, now - f.pendingSince) : 0;
  const view = {
    cluster: f.cluster,
    name: f.node,
    state,
    ackedRevision: f.ackedRevision,
    syncedRevision: f.syncedRevision,
    lagMs,
    since: 0,
    error: '',
    digest: f.digest,
  };
  switch (state) {
    case 'disconnected':
      view.since = f.connectionChangedAt;
      break;
    case 'nacked':
      view.since = f.nack!.at;
      view.error = f.nack!.message;
      break;
    case 'diverged':
      view.since = f.divergence!.at;
      view.error = `datapath digest ${f.divergence!.reported} differs from expected ${f.divergence!.expected}`;
      break;
    case 'in-sync':
      view.since = f.inSyncSince;
      break;
    case 'pending':
      view.since = f.pendingSince;
      break;
  }
  return view;
}
