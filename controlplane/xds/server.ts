import * as grpc from '@grpc/grpc-js';
import { MeshError, type Clock, type ErrorCode, type Logger } from '../../common/index.js';
import { authorizeNodeStream } from '../../common/tls/index.js';
import {
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_HEADER,
  type DeltaDiscoveryRequest,
} from '../../proto/index.js';
import { nodeKey, type MeshRevision, type SnapshotCache } from '../snapshot/index.js';
import type { NodeIdentity, XdsCallbacks } from './callbacks.js';
import { NodeSession } from './node-session.js';
import { PartDiffs } from './part-diff.js';
import { PushScheduler } from './push-scheduler.js';
import { HeapTrimmer } from './heap-trim.js';
import { ResourceDigests } from './resource-digest.js';
import {
  ResponseEncoder,
  discoveryServiceDefinition,
  type EncodedResponse,
} from './response-encoding.js';

type Stream = grpc.ServerDuplexStream<DeltaDiscoveryRequest, EncodedResponse>;

export interface XdsServerOptions {
  /**
   * coalescing of bursts: debounce after the last revision, capped at a
   * maximum delay (defaults 2 ms / 25 ms); pushes of one revision built
   * `sliceSize` nodes at a time, yielding to the event loop between slices (default 64)
   */
  pushTiming?: { debounceMs?: number; maxDelayMs?: number; sliceSize?: number };
  /**
   * Serve a node only to a client certificate naming exactly that node
   * (spiffe://meshplane/cluster/<c>/node/<n>). Set whenever the server runs
   * mTLS; off only for plain-text servers, which cannot know who is calling.
   */
  requireNodeCertificate?: boolean;
  /**
   * Returns freed heap memory to the OS (e.g. glibcMallocTrim()); called
   * once streams have stopped opening and closing for a moment, and never
   * while revisions are being pushed (HeapTrimmer).
   */
  heapTrim?: () => void;
}

/** How a refused stream ends: the agent classifies by status code, never by text. */
const STATUS_OF: Partial<Record<ErrorCode, grpc.status>> = {
  PROTOCOL_MISMATCH: grpc.status.FAILED_PRECONDITION,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
};

/**
 * The gRPC side of snapshot distribution: one stream per node, served from
 * the snapshot cache. The cache decides what each node should hold; this
 * server decides how it gets there (diffs, one revision in flight, ACK/NACK).
 */
export class XdsServer {
  readonly #cache: SnapshotCache;
  readonly #callbacks: XdsCallbacks;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: XdsServerOptions;
  readonly #digests = new ResourceDigests();
  readonly #diffs = new PartDiffs();
  readonly #encoder = new ResponseEncoder();
  readonly #sessions = new Map<string, { session: NodeSession; stream: Stream }>();
  readonly #scheduler: PushScheduler;
  readonly #unsubscribe: () => void;
  readonly #trimmer: HeapTrimmer | undefined;

  constructor(
    cache: SnapshotCache,
    callbacks: XdsCallbacks,
    clock: Clock,
    log: Logger,
    opts: XdsServerOptions = {},
  ) {
    this.#cache = cache;
    this.#opts = opts;
    this.#callbacks = callbacks;
    this.#clock = clock;
    this.#log = log;
    this.#scheduler = new PushScheduler((keys) => {
      for (const key of keys) this.#sessions.get(key)?.session.push();
    }, opts.pushTiming ?? {});
    this.#unsubscribe = cache.subscribe((rev) => this.#onRevision(rev));
    this.#trimmer = opts.heapTrim ? new HeapTrimmer(opts.heapTrim) : undefined;
  }

  /**
   * The service definition (MeshDiscovery, with responses written
   * pre-encoded) and its implementation, for `server.addService(...)`.
   */
  service(): [typeof discoveryServiceDefinition, grpc.UntypedServiceImplementation] {
    return [
      discoveryServiceDefinition,
      { deltaResources: (stream: Stream) => this.#serve(stream) },
    ];
  }

  connectedNodes(): string[] {
    return [...this.#sessions.keys()];
  }

  /** Ends every stream (agents reconnect to another replica or when we return). */
  close(): void {
    this.#unsubscribe();
    this.#scheduler.close();
    this.#trimmer?.close();
    for (const { session, stream } of this.#sessions.values()) {
      session.close();
      stream.end();
    }
    this.#sessions.clear();
  }

  #onRevision(rev: MeshRevision): void {
    this.#trimmer?.busy();
    this.#scheduler.add(rev.affected.filter((key) => this.#sessions.has(key)));
  }

  #serve(stream: Stream): void {
    let session: NodeSession | undefined;
    let identity: NodeIdentity | undefined;
    const meta = new grpc.Metadata();
    meta.set(PROTOCOL_VERSION_HEADER, String(PROTOCOL_VERSION));
    stream.sendMetadata(meta);

    stream.on('data', (req: DeltaDiscoveryRequest) => {
      try {
        if (!session) {
          const opened = this.#open(stream, req);
          session = opened.session;
          identity = opened.identity;
          return;
        }
        // An ACK or NACK: pushes are in motion (a verification report is not).
        if (!req.verification) this.#trimmer?.busy();
        session.onRequest(req);
      } catch (err) {
        const e =
          err instanceof MeshError ? err : new MeshError('INTERNAL', String(err), { cause: err });
        this.#log.warn('discovery stream refused', { node: identity?.key, error: e.message });
        // grpc-js turns an 'error' event on a server stream into the call's status.
        stream.emit('error', {
          code: STATUS_OF[e.code] ?? grpc.status.INVALID_ARGUMENT,
          details: e.message,
        });
      }
    });
    const closed = (reason: string): void => {
      if (!session || !identity) return;
      session.close();
      const current = this.#sessions.get(identity.key);
      if (current?.session === session) this.#sessions.delete(identity.key);
      this.#trimmer?.churn();
      this.#callbacks.onStreamClosed?.(identity, reason);
      session = undefined;
    };
    stream.on('end', () => {
      closed('agent closed the stream');
      stream.end();
    });
    stream.on('error', (err: Error) => closed(`stream error: ${err.message}`));
    stream.on('cancelled', () => closed('cancelled'));
  }

  #open(
    stream: Stream,
    req: DeltaDiscoveryRequest,
  ): { session: NodeSession; identity: NodeIdentity } {
    if (req.protocolVersion !== PROTOCOL_VERSION) {
      throw new MeshError(
        'PROTOCOL_MISMATCH',
        `agent speaks discovery protocol ${req.protocolVersion}, this control plane speaks ${PROTOCOL_VERSION}`,
      );
    }
    if (!req.node?.id || !req.node.cluster) {
      throw new MeshError('VALIDATION', 'the first request must name node.id and node.cluster');
    }
    // The node a stream serves is the one its first request names; only that
    // node's own certificate may ask (one agent's key must not read another's policy).
    if (this.#opts.requireNodeCertificate) {
      authorizeNodeStream(stream.getAuthContext(), req.node.cluster, req.node.id);
    }
    const identity: NodeIdentity = {
      key: nodeKey(req.node.cluster, req.node.id),
      cluster: req.node.cluster,
      node: req.node.id,
    };
    const previous = this.#sessions.get(identity.key);
    if (previous) {
      // A reconnect that overtook the old stream's teardown: the newest wins.
      previous.session.close();
      previous.stream.end();
    }
    // What its datapath holds per endpoint decides its endpoints' overflow errors (before the first push).
    this.#cache.setNodeCapacity(identity.key, req.capacity?.policyEntriesPerEndpoint);
    const session = new NodeSession(
      identity,
      req.initialResourceVersions.map((r) => ({
        typeUrl: r.typeUrl,
        name: r.name,
        version: r.version,
      })),
      {
        cache: this.#cache,
        digests: this.#digests,
        diffs: this.#diffs,
        encoder: this.#encoder,
        callbacks: this.#callbacks,
        send: (r) => stream.write(r),
        clock: this.#clock,
        log: this.#log,
      },
    );
    this.#sessions.set(identity.key, { session, stream });
    this.#trimmer?.churn();
    this.#callbacks.onStreamOpen?.(identity);
    session.push();
    return { session, identity };
  }
}
