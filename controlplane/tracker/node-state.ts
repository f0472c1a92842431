/**
 * Node states as DESIGN.md defines them, derived from O(1) facts per node.
 * Pure: the caller passes `now` and the latest mesh revision.
 */
export type NodeStateName = 'in-sync' | 'pending' | 'nacked' | 'diverged' | 'disconnected';

export interface NodeFacts {
  cluster: string;
  node: string;
  connected: boolean;
  /** when the stream opened or closed last; 0 = never connected */
  connectionChangedAt: number;
  ackedRevision: number;
  syncedRevision: number;
  /** commit time of the oldest affected revision not yet synced; 0 = none */
  pendingSince: number;
  /** the last push was NACKed and nothing newer was accepted */
  nack: { message: string; at: number } | undefined;
  /** reported digest differs from the one expected for what it ACKed */
  divergence: { reported: string; expected: string; at: number } | undefined;
  digest: string;
  /** when the node last became in-sync */
  inSyncSince: number;
}

export interface NodeView {
  cluster: string;
  name: string;
  state: NodeStateName;
  ackedRevision: number;
  syncedRevision: number;
  lagMs: number;
  /** when the node entered this state (epoch ms); 0 = unknown (never connected) */
  since: number;
  error: string;
  digest: string;
}

export function viewOf(f: NodeFacts, latestRevision: number, now: number): NodeView {
  const base = {
    cluster: f.cluster,
    name: f.node,
    ackedRevision: f.ackedRevision,
    syncedRevision: f.syncedRevision,
    digest: f.digest,
  };
  const lagMs = f.pendingSince > 0 ? Math.max(0, now - f.pendingSince) : 0;
  if (!f.connected) {
    return { ...base, state: 'disconnected', lagMs, since: f.connectionChangedAt, error: '' };
  }
  if (f.nack) return { ...base, state: 'nacked', lagMs, since: f.nack.at, error: f.nack.message };
  if (f.divergence) {
    return {
      ...base,
      state: 'diverged',
      lagMs,
      since: f.divergence.at,
      error: `datapath digest ${f.divergence.reported} differs from expected ${f.divergence.expected}`,
    };
  }
  if (f.syncedRevision >= latestRevision)
    return { ...base, state: 'in-sync', lagMs: 0, since: f.inSyncSince, error: '' };
  return { ...base, state: 'pending', lagMs, since: f.pendingSince, error: '' };
}
