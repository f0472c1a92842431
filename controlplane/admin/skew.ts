import { abortAfter, sleep } from '../../common/index.js';
import type {
  LatencyFigureMessage,
  NodeStatus,
  SkewResponse,
  WaitRequest,
  WaitResponse,
} from '../../proto/index.js';
import type { LatencyFigure, NodeView, Tracker } from '../telemetry/index.js';

export interface SkewDeps {
  tracker: Tracker;
  /** the etcd revision this replica's model reflects (mesh revisions are a subset) */
  observedRevision: () => number;
}

/** A node as Status, Skew and Wait report it (the objects of `status --json` and `skew --json`). */
export function nodeStatus(v: NodeView): NodeStatus {
  return {
    name: v.name,
    state: v.state,
    ackedRevision: v.ackedRevision,
    syncedRevision: v.syncedRevision,
    lagMs: v.lagMs,
    sinceUnixMs: v.since,
    error: v.error,
    digest: v.digest,
  };
}

const figure = (f: LatencyFigure): LatencyFigureMessage => ({ meanMs: f.meanMs, maxMs: f.maxMs });

export function buildSkew(tracker: Tracker, now: number): SkewResponse {
  const r = tracker.skew();
  return {
    revision: r.revision,
    commitTimeUnixMs: r.commitTime,
    pending: r.pending,
    ageMs: r.ageMs,
    nowUnixMs: now,
    clusters: r.clusters.map((c) => ({
      name: c.name,
      pending: c.pending,
      ageMs: c.ageMs,
      syncedRevision: c.syncedRevision,
      states: Object.entries(c.states).map(([state, nodes]) => ({ state, nodes })),
      nodes: c.nodes.map(nodeStatus),
    })),
    revisions: r.revisions.map((v) => ({
      revision: v.revision,
      commitTimeUnixMs: v.commitTime,
      ageMs: v.ageMs,
      affected: v.affected,
      target: v.target,
      pending: v.pending,
      acks: v.acks,
      nacks: v.nacks,
      convergedUnixMs: v.convergedAt,
      skewWindowMs: v.skewWindowMs,
      propagation: figure(v.latency.propagation),
      queue: figure(v.latency.queue),
      transfer: figure(v.latency.transfer),
      apply: figure(v.latency.apply),
      clusters: v.clusters.map((c) => ({
        name: c.name,
        affected: c.affected,
        target: c.target,
        pending: c.pending,
        convergedUnixMs: c.convergedAt,
      })),
    })),
  };
}

const DEFAULT_WAIT_MS = 60_000;
const MAX_WAIT_MS = 600_000;

/** The newest mesh revision at or below etcd revision R: the node states that reflect R are its. */
function targetOf(d: SkewDeps, revision: number): number {
  return d.tracker.meshRevisionAtOrBelow(revision) ?? Math.min(revision, d.tracker.latestRevision);
}

/** Cheap: the tracker keeps counts per synced revision, so this scans no nodes. */
function isSynced(d: SkewDeps, revision: number): boolean {
  return d.observedRevision() >= revision && d.tracker.countBehind(targetOf(d, revision)) === 0;
}

function waitState(d: SkewDeps, revision: number): WaitResponse {
  const observed = d.observedRevision();
  const target = targetOf(d, revision);
  const laggards = d.tracker
    .nodesBehind(target)
    .map((n) => ({ cluster: n.cluster, node: nodeStatus(n) }));
  return {
    synced: observed >= revision && laggards.length === 0,
    revision: target,
    observedRevision: observed,
    laggards,
  };
}

/**
 * Resolves when every node of the mesh is synced at `revision` or later, or
 * at the timeout (then `synced` is false and `laggards` names who is behind).
 * Woken by the tracker's events, with a slow poll for etcd revisions that
 * are not mesh revisions.
 */
export async function waitForRevision(
  d: SkewDeps,
  req: WaitRequest,
  opts: { signal?: AbortSignal } = {},
): Promise<WaitResponse> {
  const timeoutMs = Math.min(req.timeoutMs > 0 ? req.timeoutMs : DEFAULT_WAIT_MS, MAX_WAIT_MS);
  const { signal, clear } = abortAfter(timeoutMs, opts.signal);
  let wake: (() => void) | undefined;
  const off = d.tracker.subscribe(() => wake?.());
  try {
    for (;;) {
      // Woken by every tracker event: only a count per wake, the report once at the end.
      if (isSynced(d, req.revision) || signal.aborted) return waitState(d, req.revision);
      await Promise.race([
        new Promise<void>((resolve) => (wake = resolve)),
        sleep(250, signal).catch(() => undefined),
      ]);
    }
  } finally {
    off();
    clear();
  }
}
