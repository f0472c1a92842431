import { addMoment, emptyMoments, type LatencySplit, type Moments } from './latency.js';

/**
 * Aggregates of one mesh revision: O(clusters) numbers, never a list of nodes.
 * Times are epoch ms on this replica's clock.
 */
export interface RevisionRecord {
  revision: number;
  commitTime: number;
  /** W3C traceparents of the change sets committed at this revision */
  traceparents: readonly string[];
  /** per cluster: nodes whose expected snapshot changed at this revision */
  affected: Map<string, number>;
  /** per cluster: nodes not synced at this revision right after its commit (affected + already lagging) */
  target: Map<string, number>;
  /** per cluster: nodes whose syncedRevision is exactly this revision now */
  syncedExactly: Map<string, number>;
  /** per cluster: when the last of its target nodes became synced at this revision */
  convergedAt: Map<string, number>;
  /** ACKs whose state covers this revision (pushes sent after its commit) */
  acks: number;
  nacks: number;
  /** first and last such ACK: the skew window */
  firstAckAt: number;
  lastAckAt: number;
  propagation: Moments;
  queue: Moments;
  transfer: Moments;
  apply: Moments;
}

/**
 * The last `capacity` mesh revisions, oldest first. Pure bookkeeping: every
 * time is passed in. Counts of nodes synced exactly at each revision give
 * "not synced at R" for every R as a suffix sum, without any per-node list.
 */
export class RevisionWindow {
  readonly #capacity: number;
  readonly #records: RevisionRecord[] = [];
  readonly #byRevision = new Map<number, RevisionRecord>();

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  add(
    revision: number,
    commitTime: number,
    affected: Map<string, number>,
    traceparents: readonly string[],
  ): { record: RevisionRecord; evicted: RevisionRecord | undefined } {
    const record: RevisionRecord = {
      revision,
      commitTime,
      traceparents,
      affected,
      target: new Map(),
      syncedExactly: new Map(),
      convergedAt: new Map(),
      acks: 0,
      nacks: 0,
      firstAckAt: 0,
      lastAckAt: 0,
      propagation: emptyMoments(),
      queue: emptyMoments(),
      transfer: emptyMoments(),
      apply: emptyMoments(),
    };
    this.#records.push(record);
    this.#byRevision.set(revision, record);
    let evicted: RevisionRecord | undefined;
    if (this.#records.length > this.#capacity) {
      evicted = this.#records.shift();
      if (evicted) this.#byRevision.delete(evicted.revision);
    }
    return { record, evicted };
  }

  get(revision: number): RevisionRecord | undefined {
    return this.#byRevision.get(revision);
  }

  get latest(): RevisionRecord | undefined {
    return this.#records.at(-1);
  }

  /** Oldest first; the caller must not modify them. */
  records(): readonly RevisionRecord[] {
    return this.#records;
  }

  /** Records with `after < revision <= upTo`, oldest first. */
  range(after: number, upTo: number): RevisionRecord[] {
    const out: RevisionRecord[] = [];
    for (let i = this.#records.length - 1; i >= 0; i--) {
      const r = this.#records[i]!;
      if (r.revision <= after) break;
      if (r.revision <= upTo) out.push(r);
    }
    return out.reverse();
  }

  /** The oldest record after `revision`, if any. */
  after(revision: number): RevisionRecord | undefined {
    return this.#records.find((r) => r.revision > revision);
  }

  /** A node of `cluster` moved its syncedRevision (undefined: it joined or left the mesh). */
  moveSynced(cluster: string, from: number | undefined, to: number | undefined): void {
    if (from !== undefined) {
      const r = this.#byRevision.get(from);
      const n = r?.syncedExactly.get(cluster);
      if (r && n !== undefined) r.syncedExactly.set(cluster, n - 1);
    }
    if (to !== undefined) {
      const r = this.#byRevision.get(to);
      if (r) r.syncedExactly.set(cluster, (r.syncedExactly.get(cluster) ?? 0) + 1);
    }
  }

  /** Nodes of `cluster` not synced at `record` now, given how many nodes the cluster has. */
  notSynced(record: RevisionRecord, cluster: string, clusterNodes: number): number {
    let atOrAbove = 0;
    for (let i = this.#records.length - 1; i >= 0; i--) {
      const r = this.#records[i]!;
      if (r.revision < record.revision) break;
      atOrAbove += r.syncedExactly.get(cluster) ?? 0;
    }
    return Math.max(0, clusterNodes - atOrAbove);
  }

  /** Adds one ACK that covers `record` to its aggregates. */
  static addAck(record: RevisionRecord, receivedAt: number, split: LatencySplit): void {
    record.acks += 1;
    if (record.firstAckAt === 0 || receivedAt < record.firstAckAt) record.firstAckAt = receivedAt;
    if (receivedAt > record.lastAckAt) record.lastAckAt = receivedAt;
    addMoment(record.propagation, split.propagationMs);
    addMoment(record.queue, split.queueMs);
    addMoment(record.transfer, split.transferMs);
    addMoment(record.apply, split.applyMs);
  }
}
