import {
  RESOURCE_TYPES,
  resourceKey,
  type Clock,
  type EncodedResource,
  type Logger,
} from '../../common/index.js';
import type { DeltaDiscoveryRequest } from '../../proto/index.js';
import type { NodeSnapshot, SnapshotCache } from '../snapshot/index.js';
import type { NodeIdentity, XdsCallbacks } from './callbacks.js';
import { groupByType, type PartDiffs, type TypeDelta } from './part-diff.js';
import type { ResourceDigests } from './resource-digest.js';
import type { EncodedResponse, ResponseEncoder } from './response-encoding.js';

interface InFlight {
  nonce: string;
  revision: number;
  target: NodeSnapshot;
  sentAt: number;
}

/**
 * One agent's stream: what the node holds (as far as its ACKs prove), the one
 * revision in flight, and the last NACKed target (never resent unchanged).
 * A slow agent gets the newest state when it ACKs, never a backlog.
 */
export class NodeSession {
  readonly node: NodeIdentity;
  readonly #cache: SnapshotCache;
  readonly #digests: ResourceDigests;
  readonly #diffs: PartDiffs;
  readonly #callbacks: XdsCallbacks;
  readonly #encoder: ResponseEncoder;
  readonly #send: (r: EncodedResponse) => void;
  readonly #clock: Clock;
  readonly #log: Logger;
  /**
   * What the node holds: the snapshot it last ACKed (immutable, shared with
   * the cache, so this costs no copy), or before any ACK on this stream, the
   * resource versions it announced (resource key -> version).
   */
  #heldSnapshot: NodeSnapshot | undefined;
  readonly #heldVersions = new Map<string, string>();
  #heldDigest = '';
  #heldRevision = 0;
  #inFlight: InFlight | undefined;
  #nackedTarget: NodeSnapshot | undefined;
  #needsInitial = true;
  #closed = false;
  /** the last nonce of this stream: nonces only need to be unique per stream (as go-control-plane's counters) */
  #nonces = 0;

  constructor(
    node: NodeIdentity,
    initial: { typeUrl: string; name: string; version: string }[],
    deps: {
      cache: SnapshotCache;
      digests: ResourceDigests;
      diffs: PartDiffs;
      callbacks: XdsCallbacks;
      encoder: ResponseEncoder;
      send: (r: EncodedResponse) => void;
      clock: Clock;
      log: Logger;
    },
  ) {
    this.node = node;
    for (const r of initial) this.#heldVersions.set(resourceKey(r.typeUrl, r.name), r.version);
    this.#cache = deps.cache;
    this.#digests = deps.digests;
    this.#diffs = deps.diffs;
    this.#callbacks = deps.callbacks;
    this.#encoder = deps.encoder;
    this.#send = deps.send;
    this.#clock = deps.clock;
    this.#log = deps.log;
  }

  close(): void {
    this.#closed = true;
  }

  /** Sends the difference to the node's current snapshot, if nothing is in flight. */
  push(): void {
    if (this.#closed || this.#inFlight) return;
    const target = this.#cache.snapshot(this.node.key);
    if (!target) return; // not (yet) a node of the mesh
    if (target === this.#nackedTarget) return;
    // Nothing to send (an ACK of the current target, a revision that did not change this node).
    if (target === this.#heldSnapshot && !this.#needsInitial) return;
    const difference = this.#difference(target);
    if (difference.length === 0 && !this.#needsInitial) return;
    this.#needsInitial = false;

    const revision = this.#cache.latest.revision;
    // On connect the node gets the current revision even when it already
    // holds everything, so it ACKs and reports its digest.
    const types = difference.length > 0 ? difference : NOTHING_TO_SEND;
    let nonce = '';
    let bytes = 0;
    let count = 0;
    let removedCount = 0;
    const sentAt = this.#clock.now();
    const traceContext = this.#callbacks.pushContext?.(this.node, revision) ?? NO_TRACE_CONTEXT;
    for (let i = 0; i < types.length; i++) {
      const { typeUrl, changed, removed } = types[i]!;
      this.#nonces += 1;
      nonce = String(this.#nonces);
      for (const r of changed) bytes += r.payload.byteLength;
      count += changed.length;
      removedCount += removed.length;
      // The resources' bytes are shared by every node receiving them; only the head is per node.
      const head = {
        typeUrl,
        removedResources: removed,
        nonce,
        meshRevision: revision,
        revisionComplete: i === types.length - 1,
        systemVersionInfo: String(revision),
        traceContext,
      };
      this.#send(this.#encoder.encode(head, changed));
    }
    this.#inFlight = { nonce, revision, target, sentAt };
    this.#callbacks.onPush?.(this.node, {
      revision,
      nonce,
      resources: count,
      removed: removedCount,
      bytes,
      sentAt,
    });
  }

  /**
   * What the node lacks for `target`, one entry per resource type, in the
   * order they are sent. After its first ACK the node holds a snapshot of the
   * same cache, so the two are compared part by part (shared parts skipped,
   * diffs and their grouping shared between nodes: a revision that changed
   * one part costs a node no allocation here); before that, against the
   * versions it announced on connect.
   */
  #difference(target: NodeSnapshot): readonly TypeDelta[] {
    const held = this.#heldSnapshot;
    if (held && held.parts.length === target.parts.length)
      return this.#diffs.step(held.parts, target.parts);
    const versions = held ? versionsOf(held) : this.#heldVersions;
    const changed: EncodedResource[] = [];
    const removed: { typeUrl: string; name: string }[] = [];
    for (const r of target.resources()) {
      if (versions.get(resourceKey(r.typeUrl, r.name)) !== r.version) changed.push(r);
    }
    for (const key of versions.keys()) {
      if (target.get(key)) continue;
      const [typeUrl, name] = splitKey(key);
      removed.push({ typeUrl, name });
    }
    return groupByType(changed, removed);
  }

  /** An ACK, NACK or verification report from the agent. */
  onRequest(req: DeltaDiscoveryRequest): void {
    if (req.verification) {
      this.#callbacks.onVerification?.(this.node, {
        revision: req.appliedRevision,
        digest: req.digest,
        expectedDigest: this.#heldDigest,
      });
      return;
    }
    const inFlight = this.#inFlight;
    if (!inFlight || req.responseNonce !== inFlight.nonce) {
      this.#log.warn('stale or unknown nonce ignored', {
        node: this.node.key,
        nonce: req.responseNonce,
      });
      return;
    }
    this.#inFlight = undefined;
    if (req.errorDetail) {
      this.#nackedTarget = inFlight.target;
      this.#callbacks.onNack?.(this.node, {
        revision: inFlight.revision,
        nonce: inFlight.nonce,
        message: req.errorDetail.message,
        resourceNames: req.errorDetail.resourceNames,
        heldRevision: req.appliedRevision,
      });
    } else {
      this.#heldSnapshot = inFlight.target;
      // Only read before the first ACK: emptied, not replaced (every ACK of every node passes here).
      this.#heldVersions.clear();
      this.#heldRevision = inFlight.revision;
      this.#heldDigest = this.#digests.digestOfParts(inFlight.target.parts);
      this.#nackedTarget = undefined;
      this.#callbacks.onAck?.(this.node, {
        revision: req.appliedRevision,
        nonce: inFlight.nonce,
        applyDurationUs: req.applyDurationUs,
        digest: req.digest,
        expectedDigest: this.#heldDigest,
        current: this.#cache.snapshot(this.node.key) === inFlight.target,
        sentAt: inFlight.sentAt,
        receivedAt: this.#clock.now(),
      });
    }
    this.push();
  }

  get heldRevision(): number {
    return this.#heldRevision;
  }
}

/** A connect that needs nothing still gets one (empty) response of the first type, to ACK. */
const NOTHING_TO_SEND: readonly TypeDelta[] = [
  { typeUrl: RESOURCE_TYPES[0], changed: [], removed: [] },
];

const NO_TRACE_CONTEXT: Readonly<Record<string, string>> = Object.freeze({});

function versionsOf(snapshot: NodeSnapshot): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of snapshot.resources()) m.set(resourceKey(r.typeUrl, r.name), r.version);
  return m;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('|');
  return [key.slice(0, i), key.slice(i + 1)];
}
