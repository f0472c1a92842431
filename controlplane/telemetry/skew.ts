import type { Moments } from './latency.js';
import type { ClusterCounts } from './cluster-nodes.js';
import type { NodeStateName, NodeView } from './node-state.js';
import type { RevisionRecord } from './revision-window.js';

/** Mean and maximum of one part of the latency split over the ACKs covering a revision. */
export interface LatencyFigure {
  meanMs: number;
  maxMs: number;
}

export interface ClusterRevisionSummary {
  name: string;
  affected: number;
  /** nodes not synced at the revision right after its commit */
  target: number;
  /** nodes still not synced at it */
  pending: number;
  /** when the cluster's last target node became synced at it (epoch ms); 0 = not yet */
  convergedAt: number;
}

/** A revision's propagation, from O(1) aggregates (never per node). */
export interface RevisionSummary {
  revision: number;
  commitTime: number;
  /** now − commit */
  ageMs: number;
  affected: number;
  target: number;
  pending: number;
  acks: number;
  nacks: number;
  /** when every target node was synced at it (epoch ms); 0 = not yet */
  convergedAt: number;
  /** first to last ACK covering it (so far, while still converging) */
  skewWindowMs: number;
  latency: {
    propagation: LatencyFigure;
    queue: LatencyFigure;
    transfer: LatencyFigure;
    apply: LatencyFigure;
  };
  clusters: ClusterRevisionSummary[];
}

export interface ClusterSkew {
  name: string;
  /** nodes not synced at the latest revision */
  pending: number;
  /** the oldest of those nodes' lag: now − commit of the oldest revision it has not synced */
  ageMs: number;
  /** the lowest syncedRevision of the cluster's nodes */
  syncedRevision: number;
  states: Record<NodeStateName, number>;
  nodes: NodeView[];
}

/** What `meshctl skew --json` prints (with apiVersion) and the dashboard shows. */
export interface SkewReport {
  revision: number;
  commitTime: number;
  /** mesh-wide skew at the latest revision: nodes not synced at it and the oldest lag */
  pending: number;
  ageMs: number;
  clusters: ClusterSkew[];
  /** the last revisions, newest first */
  revisions: RevisionSummary[];
}

function figure(m: Moments): LatencyFigure {
  return { meanMs: m.count > 0 ? m.sum / m.count : 0, maxMs: m.max };
}

function sumOf(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

/** Summarises one revision; `pendingOf(cluster)` counts the cluster's nodes not synced at it. */
export function summarizeRevision(
  r: RevisionRecord,
  now: number,
  pendingOf: (cluster: string) => number,
): RevisionSummary {
  const names = new Set([...r.target.keys(), ...r.affected.keys()]);
  const clusters: ClusterRevisionSummary[] = [...names].sort().map((name) => ({
    name,
    affected: r.affected.get(name) ?? 0,
    target: r.target.get(name) ?? 0,
    pending: pendingOf(name),
    convergedAt: r.convergedAt.get(name) ?? 0,
  }));
  const pending = clusters.reduce((n, c) => n + c.pending, 0);
  const converged = clusters.every((c) => c.pending === 0);
  const convergedAt = converged ? Math.max(r.commitTime, ...clusters.map((c) => c.convergedAt)) : 0;
  return {
    revision: r.revision,
    commitTime: r.commitTime,
    ageMs: Math.max(0, now - r.commitTime),
    affected: sumOf(r.affected),
    target: sumOf(r.target),
    pending,
    acks: r.acks,
    nacks: r.nacks,
    convergedAt,
    skewWindowMs: r.acks > 0 ? r.lastAckAt - r.firstAckAt : 0,
    latency: {
      propagation: figure(r.propagation),
      queue: figure(r.queue),
      transfer: figure(r.transfer),
      apply: figure(r.apply),
    },
    clusters,
  };
}

/** A cluster's skew from its kept counts and its nodes' views. */
export function clusterSkew(counts: ClusterCounts, nodes: NodeView[]): ClusterSkew {
  return {
    name: counts.name,
    pending: counts.pending,
    ageMs: counts.ageMs,
    syncedRevision: counts.syncedRevision,
    states: { ...counts.states },
    nodes,
  };
}
