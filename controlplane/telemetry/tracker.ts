import { compareStrings, type Clock } from '../../common/index.js';
import { nodeKey, type MeshRevision } from '../snapshot/index.js';
import type {
  AckInfo,
  NackInfo,
  NodeIdentity,
  PushInfo,
  VerificationInfo,
  XdsCallbacks,
} from '../xds/index.js';
import { ClusterNodes, type ClusterCounts } from './cluster-nodes.js';
import { splitLatency, type LatencySplit } from './latency.js';
import {
  newNodeFacts,
  recordApply,
  viewOf,
  type NodeApply,
  type NodeFacts,
  type NodeView,
} from './node-state.js';
import { RevisionWindow, type RevisionRecord } from './revision-window.js';
import { clusterSkew, summarizeRevision, type RevisionSummary, type SkewReport } from './skew.js';
import type { TrackerEvent } from './tracker-events.js';

export interface TrackerOptions {
  clock: Clock;
  /** how many recent revisions keep aggregates (default 100) */
  revisions?: number;
}

/** A node's view plus its last applies (for a drill-down). */
export interface NodeDetail extends NodeView {
  connected: boolean;
  ackedAt: number;
  history: readonly NodeApply[];
}

/**
 * The propagation tracker: O(1) facts per node and aggregates for the last N
 * mesh revisions, fed by the snapshot cache's revisions (`onRevision`) and
 * the xDS stream hooks (it is the server's `XdsCallbacks`). Arithmetic lives
 * in pure files (node-state, latency, revision-window, skew); this class
 * keeps the state and tells subscribers what changed.
 *
 * Single-threaded like the rest of the process: every method runs to
 * completion; listeners run synchronously and must not throw.
 */
export class Tracker implements XdsCallbacks {
  readonly #clock: Clock;
  readonly #nodes = new Map<string, NodeFacts>();
  /** cluster -> its nodes in the mesh, with counts kept as they change (reads never scan nodes) */
  readonly #clusters = new Map<string, ClusterNodes>();
  readonly #window: RevisionWindow;
  readonly #listeners = new Set<(e: TrackerEvent) => void>();
  /** streams of nodes not (yet) in the mesh: key -> when they opened */
  readonly #openUnknown = new Map<string, number>();
  #latest = 0;
  #latestCommit = 0;

  constructor(opts: TrackerOptions) {
    this.#clock = opts.clock;
    this.#window = new RevisionWindow(opts.revisions ?? 100);
  }

  get latestRevision(): number {
    return this.#latest;
  }

  get latestCommitTime(): number {
    return this.#latestCommit;
  }

  /**
   * Every change is announced synchronously: a revision, a push, an ACK (with
   * the split for each revision it covered), a NACK, a divergence, a stream
   * opening or closing, a revision converging in a cluster. Returns the
   * unsubscribe function.
   */
  subscribe(listener: (e: TrackerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(e: TrackerEvent): void {
    for (const l of this.#listeners) l(e);
  }

  /** The key the xDS server gives a node's stream (NodeIdentity.key): hooks look nodes up by it. */
  #key(cluster: string, node: string): string {
    return nodeKey(cluster, node);
  }

  #facts(cluster: string, node: string): NodeFacts | undefined {
    return this.#nodes.get(this.#key(cluster, node));
  }

  #cluster(name: string): ClusterNodes {
    let c = this.#clusters.get(name);
    if (!c) {
      c = new ClusterNodes(name);
      this.#clusters.set(name, c);
    }
    return c;
  }

  #size(cluster: string): number {
    return this.#clusters.get(cluster)?.size ?? 0;
  }

  /** Takes a node's changed facts into its cluster's counts. */
  #recount(f: NodeFacts): void {
    this.#clusters.get(f.cluster)?.recount(f, this.#latest);
  }

  #setSynced(f: NodeFacts, to: number): void {
    if (to === f.syncedRevision) return;
    this.#window.moveSynced(f.cluster, f.syncedRevision, to);
    f.syncedRevision = to;
  }

  /**
   * Called for every mesh revision, before pushes go out, with every node of
   * the mesh. A node the revision did not affect is synced at it if it was
   * synced at the previous one.
   */
  onRevision(
    rev: MeshRevision & { traceparents?: readonly string[] },
    allNodes: readonly { cluster: string; node: string }[],
  ): void {
    const previous = this.#latest;
    this.#latest = rev.revision;
    this.#latestCommit = rev.commitTime;
    for (const key of rev.removed) {
      const f = this.#nodes.get(key);
      if (!f) continue;
      this.#window.moveSynced(f.cluster, f.syncedRevision, undefined);
      this.#clusters.get(f.cluster)?.remove(f);
      this.#nodes.delete(key);
    }
    const affectedKeys = new Set(rev.affected);
    const affected = new Map<string, number>();
    const { record, evicted } = this.#window.add(
      rev.revision,
      rev.commitTime,
      affected,
      rev.traceparents ?? [],
    );
    for (const { cluster, node } of allNodes) {
      const key = this.#key(cluster, node);
      let f = this.#nodes.get(key);
      if (!f) {
        f = newNodeFacts(cluster, node);
        const openedAt = this.#openUnknown.get(key);
        if (openedAt !== undefined) {
          f.connected = true;
          f.connectionChangedAt = openedAt;
          this.#openUnknown.delete(key);
        }
        this.#nodes.set(key, f);
        this.#cluster(cluster).add(f, rev.revision);
      }
      if (affectedKeys.has(key)) {
        affected.set(cluster, (affected.get(cluster) ?? 0) + 1);
        if (f.pendingSince === 0) {
          f.pendingSince = rev.commitTime;
          f.pendingRevision = rev.revision;
        }
      } else if (f.syncedRevision === previous && f.pendingSince === 0) {
        this.#setSynced(f, rev.revision);
      }
      // Every node: the latest revision moved, so its state may have.
      this.#recount(f);
    }
    for (const [cluster, nodes] of this.#clusters) {
      const lagging = nodes.size - (record.syncedExactly.get(cluster) ?? 0);
      if (lagging > 0) record.target.set(cluster, lagging);
      else if (affected.has(cluster)) record.convergedAt.set(cluster, rev.commitTime);
    }
    this.#emit({
      type: 'revision',
      revision: rev.revision,
      commitTime: rev.commitTime,
      traceparents: record.traceparents,
      affected: new Map(affected),
      target: new Map(record.target),
    });
    if (evicted) this.#emit({ type: 'revision-evicted', revision: evicted.revision });
  }

  onStreamOpen(n: NodeIdentity): void {
    const f = this.#nodes.get(n.key);
    if (!f) {
      // Not (yet) a node of the mesh: remembered until it becomes one.
      this.#openUnknown.set(n.key, this.#clock.now());
      return;
    }
    f.connected = true;
    f.connectionChangedAt = this.#clock.now();
    this.#recount(f);
    this.#emit({ type: 'connection', cluster: n.cluster, node: n.node, connected: true });
  }

  onStreamClosed(n: NodeIdentity): void {
    const f = this.#nodes.get(n.key);
    if (!f) {
      this.#openUnknown.delete(n.key);
      return;
    }
    f.connected = false;
    f.connectionChangedAt = this.#clock.now();
    this.#recount(f);
    this.#emit({ type: 'connection', cluster: n.cluster, node: n.node, connected: false });
  }

  onPush(n: NodeIdentity, push: PushInfo): void {
    const f = this.#nodes.get(n.key);
    const covers = f
      ? this.#window.range(f.syncedRevision, push.revision).map((r) => r.revision)
      : [push.revision];
    this.#emit({ type: 'push', cluster: n.cluster, node: n.node, push, covers });
  }

  onAck(n: NodeIdentity, ack: AckInfo): void {
    const f = this.#nodes.get(n.key);
    if (!f) return;
    const wasNacked = f.nack !== undefined;
    f.ackedRevision = ack.revision;
    f.ackedAt = ack.receivedAt;
    f.digest = ack.digest;
    f.nack = undefined;
    const to = ack.current ? this.#latest : Math.max(f.syncedRevision, ack.revision);
    const covered: { revision: number; split: LatencySplit }[] = [];
    const records = this.#window.range(f.syncedRevision, to);
    for (const r of records) {
      // Revisions committed after the push left did not affect this node (the
      // push is still current): synced without receiving them, no latency.
      if (r.commitTime > ack.sentAt) continue;
      const split = splitLatency({
        commitTime: r.commitTime,
        sentAt: ack.sentAt,
        receivedAt: ack.receivedAt,
        applyUs: ack.applyDurationUs,
      });
      RevisionWindow.addAck(r, ack.receivedAt, split);
      covered.push({ revision: r.revision, split });
    }
    this.#setSynced(f, to);
    if (ack.current) {
      if (f.pendingSince !== 0 || wasNacked) f.inSyncSince = ack.receivedAt;
      f.pendingSince = 0;
      f.pendingRevision = 0;
    } else if (f.pendingSince !== 0 && to >= f.pendingRevision) {
      // Still behind: at most as far as the oldest revision after what it holds.
      const next = this.#window.after(to);
      f.pendingSince = next?.commitTime ?? this.#latestCommit;
      f.pendingRevision = next?.revision ?? this.#latest;
    }
    recordApply(f, {
      revision: ack.revision,
      ackedAt: ack.receivedAt,
      propagationMs: covered[0]?.split.propagationMs ?? 0,
      applyMs: ack.applyDurationUs / 1000,
    });
    const diverged = this.#checkDigest(f, ack.digest, ack.expectedDigest);
    this.#recount(f);
    this.#emit({
      type: 'ack',
      cluster: f.cluster,
      node: f.node,
      revision: ack.revision,
      syncedRevision: to,
      applyMs: ack.applyDurationUs / 1000,
      covered,
    });
    if (diverged) this.#emitDivergence(f);
    this.#checkConverged(records, f.cluster, ack.receivedAt);
  }

  onNack(n: NodeIdentity, nack: NackInfo): void {
    const f = this.#nodes.get(n.key);
    if (!f) return;
    const detail = nack.resourceNames.length > 0 ? ` (${nack.resourceNames.join(', ')})` : '';
    const message = `revision ${nack.revision} rejected: ${nack.message}${detail}`;
    f.nack = { message, revision: nack.revision, at: this.#clock.now() };
    this.#recount(f);
    const r = this.#window.get(nack.revision);
    if (r) r.nacks += 1;
    this.#emit({
      type: 'nack',
      cluster: f.cluster,
      node: f.node,
      revision: nack.revision,
      message,
    });
  }

  onVerification(n: NodeIdentity, v: VerificationInfo): void {
    const f = this.#nodes.get(n.key);
    if (!f) return;
    const before = f.divergence;
    f.digest = v.digest;
    const diverged = this.#checkDigest(f, v.digest, v.expectedDigest);
    this.#recount(f);
    if (diverged) this.#emitDivergence(f);
    else if (before && !f.divergence)
      this.#emit({ type: 'verified', cluster: f.cluster, node: f.node, digest: v.digest });
  }

  /** True when a new divergence starts. */
  #checkDigest(f: NodeFacts, reported: string, expected: string): boolean {
    if (expected === '' || reported === expected) {
      f.divergence = undefined;
      return false;
    }
    if (f.divergence?.reported === reported) return false;
    f.divergence = { reported, expected, at: this.#clock.now() };
    return true;
  }

  #emitDivergence(f: NodeFacts): void {
    const d = f.divergence!;
    this.#emit({
      type: 'diverged',
      cluster: f.cluster,
      node: f.node,
      reported: d.reported,
      expected: d.expected,
    });
  }

  #checkConverged(records: RevisionRecord[], cluster: string, at: number): void {
    const size = this.#size(cluster);
    for (const r of records) {
      if (r.convergedAt.has(cluster) || !r.target.has(cluster)) continue;
      if (this.#window.notSynced(r, cluster, size) > 0) continue;
      r.convergedAt.set(cluster, at);
      this.#emit({ type: 'converged', revision: r.revision, cluster, at });
    }
  }

  // ---- reads (snapshots; the caller owns the returned objects) ----

  view(cluster: string, node: string): NodeView {
    const f = this.#facts(cluster, node) ?? newNodeFacts(cluster, node);
    return viewOf(f, this.#latest, this.#clock.now());
  }

  /** The revision a node has synced (0: unknown node); no view is built — a per-push read. */
  syncedRevision(n: NodeIdentity): number {
    return this.#nodes.get(n.key)?.syncedRevision ?? 0;
  }

  node(cluster: string, node: string): NodeDetail | undefined {
    const f = this.#facts(cluster, node);
    if (!f) return undefined;
    return {
      ...viewOf(f, this.#latest, this.#clock.now()),
      connected: f.connected,
      ackedAt: f.ackedAt,
      history: [...f.history],
    };
  }

  /** Every node of the mesh, grouped by cluster (clusters and nodes in name order). */
  clusters(): { name: string; nodes: NodeView[] }[] {
    return this.#clusterViews(this.#clock.now());
  }

  #sortedClusters(): ClusterNodes[] {
    return [...this.#clusters.values()]
      .filter((c) => c.size > 0)
      .sort((a, b) => compareStrings(a.name, b.name));
  }

  #clusterViews(now: number): { name: string; nodes: NodeView[] }[] {
    return this.#sortedClusters().map((c) => ({
      name: c.name,
      nodes: c.sorted().map((f) => viewOf(f, this.#latest, now)),
    }));
  }

  /** Per-cluster counts at the latest revision, without node lists: O(clusters), no scan. */
  clusterCounts(): ClusterCounts[] {
    const now = this.#clock.now();
    return this.#sortedClusters().map((c) => c.counts(this.#latest, now));
  }

  /** How many nodes are not synced at `revision` (syncedRevision below it): no scan of nodes. */
  countBehind(revision: number): number {
    let n = 0;
    for (const c of this.#clusters.values()) n += c.behind(revision);
    return n;
  }

  /** The nodes not synced at `revision`, by cluster and name (a scan: for reporting laggards). */
  nodesBehind(revision: number): NodeView[] {
    const now = this.#clock.now();
    return this.#sortedClusters().flatMap((c) =>
      c
        .sorted()
        .filter((f) => f.syncedRevision < revision)
        .map((f) => viewOf(f, this.#latest, now)),
    );
  }

  /** Aggregates of the last revisions, newest first. */
  revisions(): RevisionSummary[] {
    return this.#summaries(this.#clock.now());
  }

  /**
   * One pass over the window, newest first: the nodes synced at or above each
   * revision are a running sum of those synced exactly at it and above.
   */
  #summaries(now: number): RevisionSummary[] {
    const records = this.#window.records();
    const atOrAbove = new Map<string, number>();
    const out: RevisionSummary[] = [];
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      for (const [c, n] of r.syncedExactly) atOrAbove.set(c, (atOrAbove.get(c) ?? 0) + n);
      out.push(
        summarizeRevision(r, now, (c) => Math.max(0, this.#size(c) - (atOrAbove.get(c) ?? 0))),
      );
    }
    return out;
  }

  revision(revision: number): RevisionSummary | undefined {
    const r = this.#window.get(revision);
    if (!r) return undefined;
    return summarizeRevision(r, this.#clock.now(), (c) =>
      this.#window.notSynced(r, c, this.#size(c)),
    );
  }

  /** The newest revision at or below `revision` this tracker knows of, if any. */
  meshRevisionAtOrBelow(revision: number): number | undefined {
    const records = this.#window.records();
    for (let i = records.length - 1; i >= 0; i--)
      if (records[i]!.revision <= revision) return records[i]!.revision;
    return undefined;
  }

  /**
   * Per-cluster and mesh-wide skew at the latest revision, and the recent
   * revisions, all at one instant. Cost: one view per node (no sorting, no
   * per-node aggregation: counts are kept as nodes change) plus one pass
   * over the revision window.
   */
  skew(): SkewReport {
    const now = this.#clock.now();
    const clusters = this.#sortedClusters().map((c) =>
      clusterSkew(
        c.counts(this.#latest, now),
        c.sorted().map((f) => viewOf(f, this.#latest, now)),
      ),
    );
    return {
      revision: this.#latest,
      commitTime: this.#latestCommit,
      pending: clusters.reduce((n, c) => n + c.pending, 0),
      ageMs: clusters.reduce((n, c) => Math.max(n, c.ageMs), 0),
      clusters,
      revisions: this.#summaries(now),
    };
  }
}
