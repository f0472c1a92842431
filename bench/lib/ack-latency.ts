/**
 * Propagation latencies read from the admin Status API, as an operator sees
 * them (`meshctl status --json`): the latest mesh revision's commit time and,
 * per node, when it entered its state — for an in-sync node, the receipt of
 * the ACK that made it current. Both on the control plane's clock; nothing
 * here subtracts two hosts' clocks. Pure.
 */
import type { SkewResponse, StatusResponse } from '../../proto/index.js';

export interface SyncView {
  revision: number;
  commitTime: number;
  nodes: number;
  /** nodes not in-sync at `revision` */
  behind: string[];
  endpoints: number;
}

export function syncView(s: StatusResponse): SyncView {
  const behind: string[] = [];
  let nodes = 0;
  let endpoints = 0;
  for (const c of s.clusters) {
    endpoints += c.endpoints;
    for (const n of c.nodes) {
      nodes += 1;
      if (n.state !== 'in-sync' || n.syncedRevision < s.revision)
        behind.push(`${c.name}/${n.name} ${n.state}`);
    }
  }
  return { revision: s.revision, commitTime: s.commitTimeUnixMs, nodes, behind, endpoints };
}

/**
 * For a settled mesh (every node in-sync at the latest revision): commit →
 * ACK receipt of every node that ACKed the latest revision (entered in-sync
 * at or after its commit), and the last such receipt.
 */
export function ackLatencies(s: StatusResponse): { latencies: number[]; lastAckAt: number } {
  const latencies: number[] = [];
  let lastAckAt = 0;
  for (const c of s.clusters) {
    for (const n of c.nodes) {
      if (n.state !== 'in-sync' || n.sinceUnixMs < s.commitTimeUnixMs) continue;
      latencies.push(n.sinceUnixMs - s.commitTimeUnixMs);
      lastAckAt = Math.max(lastAckAt, n.sinceUnixMs);
    }
  }
  return { latencies, lastAckAt };
}

/**
 * Where the time of some revisions went, from the tracker's per-revision
 * aggregates (Skew API): the mean over the revisions in (`after`, latest]
 * that affected exactly `affected` nodes of each revision's mean queue
 * (commit → push sent), transfer (ACK receipt − send − apply) and apply
 * (agent: receipt → datapath). Empty when no revision matched.
 */
export function latencySplit(
  s: SkewResponse,
  after: number,
  affected: number,
): { queueMs: number; transferMs: number; applyMs: number } | undefined {
  const rs = s.revisions.filter((r) => r.revision > after && r.affected === affected);
  if (rs.length === 0) return undefined;
  const mean = (f: (r: (typeof rs)[number]) => number): number =>
    rs.reduce((n, r) => n + f(r), 0) / rs.length;
  return {
    queueMs: mean((r) => r.queue?.meanMs ?? 0),
    transferMs: mean((r) => r.transfer?.meanMs ?? 0),
    applyMs: mean((r) => r.apply?.meanMs ?? 0),
  };
}
