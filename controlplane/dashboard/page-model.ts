/**
 * What the page derives from the wire state before drawing it. Pure (no DOM,
 * no clock): shared by the page bundle and the tests.
 */
import {
  NODE_STATE_CODES,
  syncedRevisionOf,
  type WireNode,
  type WireRevision,
  type WireState,
} from './wire.js';

export interface ClusterSummary {
  name: string;
  /** nodes per state, in NODE_STATE_CODES order */
  counts: number[];
  nodes: WireNode[];
}

export function clusterSummaries(state: WireState): ClusterSummary[] {
  const byName = new Map<string, ClusterSummary>();
  for (const n of state.nodes) {
    let c = byName.get(n[0]);
    if (!c) {
      c = { name: n[0], counts: NODE_STATE_CODES.map(() => 0), nodes: [] };
      byName.set(n[0], c);
    }
    c.counts[n[2]]! += 1;
    c.nodes.push(n);
  }
  return [...byName.values()];
}

export interface Laggard {
  cluster: string;
  node: string;
  state: (typeof NODE_STATE_CODES)[number];
  /** how long it has been behind (or away), ms */
  ageMs: number;
  syncedRevision: number;
}

/**
 * Nodes not in sync, longest behind first: age from the oldest revision they
 * have not synced, or from when they entered their state when that is older
 * knowledge (a disconnected node with nothing pending).
 */
export function laggards(state: WireState, now: number, limit: number): Laggard[] {
  const out: Laggard[] = [];
  for (const n of state.nodes) {
    if (n[2] === 0) continue;
    const from = n[6] > 0 ? n[6] : n[5];
    out.push({
      cluster: n[0],
      node: n[1],
      state: NODE_STATE_CODES[n[2]],
      ageMs: from > 0 ? Math.max(0, now - from) : 0,
      syncedRevision: syncedRevisionOf(n, state.revision),
    });
  }
  out.sort(
    (a, b) =>
      b.ageMs - a.ageMs || a.cluster.localeCompare(b.cluster) || a.node.localeCompare(b.node),
  );
  return out.slice(0, limit);
}

/**
 * The upper bound of the bucket holding the q-quantile (0 < q ≤ 1), or
 * Infinity when it falls in the overflow bucket; undefined with no samples.
 */
export function bucketQuantile(
  bucketsMs: readonly number[],
  counts: readonly number[],
  q: number,
): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return bucketsMs[i] ?? Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

export interface RevisionProgress {
  revision: number;
  commitTime: number;
  affected: number;
  synced: number;
  nacked: number;
  converged: boolean;
  acks: number;
  /** first → last ACK covering it (so far) */
  skewWindowMs: number;
  /** still open: now − commit while not converged */
  openForMs: number | undefined;
}

export function revisionProgress(r: WireRevision, now: number): RevisionProgress {
  const [revision, commitTime, affected, synced, nacked, acks, skewWindowMs] = r;
  const converged = synced >= affected;
  return {
    revision,
    commitTime,
    affected,
    synced,
    nacked,
    acks,
    converged,
    skewWindowMs,
    openForMs: converged ? undefined : Math.max(0, now - commitTime),
  };
}

/** "850 ms", "12.4 s", "3 min", "2 h 5 min" */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms < 10) return ms === 0 ? '0 ms' : `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  return m > 0 ? `${h} h ${m} min` : `${h} h`;
}
