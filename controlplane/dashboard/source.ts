/**
 * What the dashboard reads, declared here by its user (CONVENTIONS #13): the
 * composition root adapts the propagation tracker to it. Everything returned
 * is owned by the caller and may be kept (implementations return fresh
 * objects or immutable ones). Calls are cheap reads of O(1)-per-node state
 * plus bounded per-revision aggregates; none of them does I/O.
 */
export type NodeStateName = 'in-sync' | 'pending' | 'nacked' | 'diverged' | 'disconnected';

export const NODE_STATES: readonly NodeStateName[] = [
  'in-sync',
  'pending',
  'nacked',
  'diverged',
  'disconnected',
];

export interface NodeReadout {
  cluster: string;
  name: string;
  state: NodeStateName;
  ackedRevision: number;
  syncedRevision: number;
  /** when the node entered its state (epoch ms, replica clock); 0 = unknown */
  since: number;
  /** commit time of the oldest affected revision it has not synced (epoch ms); 0 = none */
  pendingSince: number;
  /** NACK or divergence message; '' when none */
  error: string;
}

export interface RevisionReadout {
  revision: number;
  /** epoch ms, replica clock */
  commitTime: number;
  /**
   * nodes that had to move for it: not synced at it right after its commit
   * (those it affected, and those already behind)
   */
  affected: number;
  /** of those, nodes synced at ≥ this revision now (a NACK never counts) */
  synced: number;
  /** NACKs of it */
  nacked: number;
  /** ACKs covering it */
  acks: number;
  /** first to last ACK covering it (so far, while it converges); 0 before two */
  skewWindowMs: number;
  /**
   * commit → ACK latencies of the affected nodes, counted into the buckets of
   * `DashboardSource.latencyBucketsMs` (one more count for the overflow bucket)
   */
  latencyCounts: readonly number[];
}

export interface NodeHistoryEntry {
  revision: number;
  outcome: 'ack' | 'nack';
  /** when the answer arrived (epoch ms) */
  at: number;
  /** commit → ACK on this replica's clock; undefined when unknown */
  latencyMs?: number;
  /** agent-reported receive → kernel */
  applyMs?: number;
  message?: string;
}

export interface DashboardSource {
  /** the latest mesh revision and its commit time (0, 0 before the first) */
  latest(): { revision: number; commitTime: number };
  /** every node of every member cluster */
  nodes(): Iterable<NodeReadout>;
  /** retained revisions, newest first (a bounded window) */
  revisions(): readonly RevisionReadout[];
  /** upper bounds (ms, ascending) of the latency buckets of `RevisionReadout.latencyCounts` */
  readonly latencyBucketsMs: readonly number[];
  /** the node's bounded recent history, newest first; [] when the tracker keeps none */
  history(cluster: string, node: string): readonly NodeHistoryEntry[];
  /**
   * Calls `onChange` after anything above may have changed (synchronously
   * from the tracker's hooks: it must be cheap; the feed coalesces).
   * Returns the unsubscribe function.
   */
  subscribe(onChange: () => void): () => void;
}
