import type { Clock } from '../../common/index.js';
import type { MeshRevision } from '../snapshot/index.js';
import type {
  AckInfo,
  NackInfo,
  NodeIdentity,
  VerificationInfo,
  XdsCallbacks,
} from '../xds/index.js';
import { viewOf, type NodeFacts, type NodeView } from './node-state.js';

/**
 * Tracks, per node, what it holds and how far behind it is: O(1) state per
 * node, updated by mesh revisions and by the xDS stream hooks. A node the
 * revision did not affect is synced at it without receiving anything.
 */
export class NodeTracker implements XdsCallbacks {
  readonly #clock: Clock;
  readonly #nodes = new Map<string, NodeFacts>();
  #latest = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get latestRevision(): number {
    return this.#latest;
  }

  #facts(cluster: string, node: string): NodeFacts {
    const key = `${cluster}/${node}`;
    let f = this.#nodes.get(key);
    if (!f) {
      f = {
        cluster,
        node,
        connected: false,
        connectionChangedAt: 0,
        ackedRevision: 0,
        syncedRevision: 0,
        pendingSince: 0,
        nack: undefined,
        divergence: undefined,
        digest: '',
        inSyncSince: 0,
      };
      this.#nodes.set(key, f);
    }
    return f;
  }

  /** Called for every mesh revision, before pushes go out. */
  onRevision(rev: MeshRevision, allNodes: readonly { cluster: string; node: string }[]): void {
    const previous = this.#latest;
    this.#latest = rev.revision;
    for (const key of rev.removed) this.#nodes.delete(key);
    const affected = new Set(rev.affected);
    for (const { cluster, node } of allNodes) {
      const f = this.#facts(cluster, node);
      const key = `${cluster}/${node}`;
      if (affected.has(key)) {
        if (f.pendingSince === 0) f.pendingSince = rev.commitTime;
      } else if (f.syncedRevision === previous && f.pendingSince === 0) {
        f.syncedRevision = rev.revision;
      }
    }
  }

  onStreamOpen(n: NodeIdentity): void {
    const f = this.#facts(n.cluster, n.node);
    f.connected = true;
    f.connectionChangedAt = this.#clock.now();
  }

  onStreamClosed(n: NodeIdentity): void {
    const f = this.#facts(n.cluster, n.node);
    f.connected = false;
    f.connectionChangedAt = this.#clock.now();
  }

  onAck(n: NodeIdentity, ack: AckInfo): void {
    const f = this.#facts(n.cluster, n.node);
    f.ackedRevision = ack.revision;
    f.digest = ack.digest;
    f.nack = undefined;
    f.syncedRevision = ack.current ? this.#latest : Math.max(f.syncedRevision, ack.revision);
    if (ack.current && f.pendingSince !== 0) {
      f.pendingSince = 0;
      f.inSyncSince = ack.receivedAt;
    }
    this.#checkDigest(f, ack.digest, ack.expectedDigest);
  }

  onNack(n: NodeIdentity, nack: NackInfo): void {
    const f = this.#facts(n.cluster, n.node);
    const detail = nack.resourceNames.length > 0 ? ` (${nack.resourceNames.join(', ')})` : '';
    f.nack = {
      message: `revision ${nack.revision} rejected: ${nack.message}${detail}`,
      at: this.#clock.now(),
    };
  }

  onVerification(n: NodeIdentity, v: VerificationInfo): void {
    const f = this.#facts(n.cluster, n.node);
    f.digest = v.digest;
    this.#checkDigest(f, v.digest, v.expectedDigest);
  }

  #checkDigest(f: NodeFacts, reported: string, expected: string): void {
    if (expected === '' || reported === expected) {
      f.divergence = undefined;
    } else if (f.divergence?.reported !== reported) {
      f.divergence = { reported, expected, at: this.#clock.now() };
    }
  }

  view(cluster: string, node: string): NodeView {
    return viewOf(this.#facts(cluster, node), this.#latest, this.#clock.now());
  }
}
