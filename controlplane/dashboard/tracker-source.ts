import type { Clock } from '../../common/index.js';
import type {
  DashboardSource,
  NodeHistoryEntry,
  NodeReadout,
  NodeStateName,
  RevisionReadout,
} from './source.js';

/**
 * The part of the propagation tracker the dashboard reads, declared by the
 * dashboard (the telemetry Tracker satisfies it structurally). Reads return
 * snapshots the caller owns.
 */
export interface TrackerReads {
  readonly latestRevision: number;
  readonly latestCommitTime: number;
  clusters(): { name: string; nodes: TrackedNode[] }[];
  /** newest first */
  revisions(): TrackedRevision[];
  node(cluster: string, node: string): { history: readonly TrackedApply[] } | undefined;
  subscribe(listener: (e: TrackedEvent) => void): () => void;
}

export interface TrackedNode {
  name: string;
  state: NodeStateName;
  ackedRevision: number;
  syncedRevision: number;
  lagMs: number;
  since: number;
  error: string;
}

export interface TrackedRevision {
  revision: number;
  commitTime: number;
  /** nodes not synced at it right after its commit (the affected ones and those already behind) */
  target: number;
  /** of those, still not synced */
  pending: number;
  nacks: number;
  skewWindowMs: number;
  acks: number;
}

export interface TrackedApply {
  revision: number;
  ackedAt: number;
  propagationMs: number;
  applyMs: number;
}

/** Tracker events; only these fields are read, anything else just means "changed". */
export interface TrackedEvent {
  type: string;
  revision?: number;
  covered?: readonly { revision: number; split: { propagationMs: number } }[];
}

/** Latency bucket bounds (ms), as Prometheus-style upper bounds; up to a minute. */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/**
 * `DashboardSource` over the tracker. Keeps, per retained revision, a
 * bucketed histogram of its commit → ACK latencies and the first and last ACK
 * time (O(buckets) per revision, never per node); everything else is read
 * from the tracker when the feed asks.
 */
export class TrackerDashboardSource implements DashboardSource {
  readonly latencyBucketsMs = LATENCY_BUCKETS_MS;
  readonly #tracker: TrackerReads;
  readonly #clock: Clock;
  /** per retained revision: commit → ACK latencies counted per bucket */
  readonly #latency = new Map<number, number[]>();
  /** last derived pendingSince per node, kept while it still fits the tracker's lag */
  readonly #pendingSince = new Map<string, number>();
  readonly #listeners = new Set<() => void>();
  #unsubscribe: (() => void) | undefined;

  constructor(tracker: TrackerReads, clock: Clock) {
    this.#tracker = tracker;
    this.#clock = clock;
  }

  latest(): { revision: number; commitTime: number } {
    return { revision: this.#tracker.latestRevision, commitTime: this.#tracker.latestCommitTime };
  }

  *nodes(): Iterable<NodeReadout> {
    const before = this.#clock.now();
    const clusters = this.#tracker.clusters();
    const after = this.#clock.now();
    const seen = new Set<string>();
    for (const c of clusters) {
      for (const n of c.nodes) {
        const key = `${c.name}/${n.name}`;
        seen.add(key);
        yield {
          cluster: c.name,
          name: n.name,
          state: n.state,
          ackedRevision: n.ackedRevision,
          syncedRevision: n.syncedRevision,
          since: n.since,
          pendingSince: this.#derivePendingSince(key, n, before, after),
          error: n.error,
        };
      }
    }
    for (const key of this.#pendingSince.keys()) if (!seen.has(key)) this.#pendingSince.delete(key);
  }

  /**
   * The tracker reports lag (now − pendingSince) at a `now` between `before`
   * and `after`; the page wants the instant itself, so it ages rows without
   * being sent them again. Exact for a pending node (its `since`); otherwise
   * the previous value while it still fits, so rows do not flicker by a ms.
   */
  #derivePendingSince(key: string, n: TrackedNode, before: number, after: number): number {
    let value = 0;
    if (n.lagMs > 0) {
      if (n.state === 'pending' && n.since > 0) {
        value = n.since;
      } else {
        const old = this.#pendingSince.get(key);
        const lo = before - n.lagMs;
        const hi = after - n.lagMs;
        value = old !== undefined && old >= lo && old <= hi ? old : hi;
      }
    }
    if (value === 0) this.#pendingSince.delete(key);
    else this.#pendingSince.set(key, value);
    return value;
  }

  revisions(): readonly RevisionReadout[] {
    return this.#tracker.revisions().map((r) => {
      const counts = this.#latency.get(r.revision);
      return {
        revision: r.revision,
        commitTime: r.commitTime,
        affected: r.target,
        synced: Math.max(0, r.target - r.pending),
        nacked: r.nacks,
        acks: r.acks,
        skewWindowMs: r.skewWindowMs,
        latencyCounts: counts ? [...counts] : emptyCounts(),
      };
    });
  }

  history(cluster: string, node: string): readonly NodeHistoryEntry[] {
    const applies = this.#tracker.node(cluster, node)?.history ?? [];
    return [...applies].reverse().map((a) => ({
      revision: a.revision,
      outcome: 'ack' as const,
      at: a.ackedAt,
      latencyMs: a.propagationMs,
      applyMs: a.applyMs,
    }));
  }

  /** Follows the tracker from the first call on, until `close()`. */
  subscribe(onChange: () => void): () => void {
    this.#listeners.add(onChange);
    this.#unsubscribe ??= this.#tracker.subscribe((e) => {
      this.#record(e);
      for (const l of this.#listeners) l();
    });
    return () => this.#listeners.delete(onChange);
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#listeners.clear();
  }

  #record(e: TrackedEvent): void {
    if (e.type === 'revision-evicted' && e.revision !== undefined) {
      this.#latency.delete(e.revision);
      return;
    }
    if (e.type !== 'ack' || !e.covered) return;
    for (const c of e.covered) {
      let counts = this.#latency.get(c.revision);
      if (!counts) {
        counts = emptyCounts();
        this.#latency.set(c.revision, counts);
      }
      counts[bucketOf(c.split.propagationMs)]! += 1;
    }
  }
}

const emptyCounts = (): number[] => new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);

function bucketOf(ms: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((b) => ms <= b);
  return i < 0 ? LATENCY_BUCKETS_MS.length : i;
}
