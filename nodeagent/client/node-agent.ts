import {
  credentials as grpcCredentials,
  type ChannelCredentials,
  type ChannelOptions,
} from '@grpc/grpc-js';
import { MeshError, sleep as abortableSleep, systemClock, type Clock } from '../../common/index.js';
import type { DatapathCapacity, MeshDiscoveryClient, Node } from '../../proto/index.js';
import type { Datapath, DatapathCounts } from '../datapath/index.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { DiscoveryClient } from './discovery-client.js';
import { AgentEvents, type NodeAgentEventName, type NodeAgentEvents } from './events.js';
import { silentLogger, type Logger } from './logger.js';
import { ackRequest, firstRequest, nackRequest, verificationRequest } from './requests.js';
import type { ShardPool } from './packed-shard.js';
import { ResourceStore } from './resource-store.js';
import type { AssembledRevision } from './revision-assembler.js';
import { RevisionApplier } from './revision-applier.js';
import { SerialQueue } from './serial-queue.js';
import { runSession, type SessionStream } from './stream-session.js';

export interface NodeAgentOptions {
  /** control plane address, HOST:PORT */
  server: string;
  node: Node;
  /** used, not owned: the agent neither creates, clears nor closes it */
  datapath: Datapath;
  /** held ipcache shards shared with the other agents of this process (a benchmark's many agents in one) */
  shardPool?: ShardPool;
  /** default insecure; mTLS credentials later */
  credentials?: ChannelCredentials;
  /** merged over the agent's defaults (keepalive, 256 MiB messages) */
  channelOptions?: ChannelOptions;
  /** full re-read and unprompted digest report; default 60 s; 0 disables */
  verifyIntervalMs?: number;
  backoff?: BackoffOptions;
  /** wall clock, for the times in status and events */
  clock?: Clock;
  /** monotonic clock in ms (fractions allowed), for apply durations; default performance.now */
  monotonic?: Clock;
  /** backoff and verification waits; must reject when the signal aborts */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** for backoff jitter */
  random?: () => number;
  logger?: Logger;
}

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'stopped';

/** A point-in-time view for status endpoints and tests; a fresh object the caller owns. */
export interface NodeAgentStatus {
  node: Node;
  server: string;
  connection: ConnectionState;
  /** wall ms when `connection` was entered */
  connectionSince: number;
  /** stream attempts so far */
  attempts: number;
  /** the revision the datapath holds; 0 before the first apply */
  appliedRevision: number;
  digest: string;
  resources: number;
  lastApplied: { revision: number; durationUs: number; at: number } | undefined;
  lastRejected:
    | { revision: number; code: string; message: string; resourceNames: string[]; at: number }
    | undefined;
  lastVerification: { digest: string; matches: boolean; at: number } | undefined;
  /** why the last stream ended */
  lastError: { code: string; message: string; at: number } | undefined;
  datapath: { capacity: DatapathCapacity; counts: DatapathCounts };
}

export interface VerificationResult {
  revision: number;
  /** from a full read */
  digest: string;
  /** the incrementally maintained digest of what was applied */
  expected: string;
  matches: boolean;
  /** sent to the control plane (only on a stream that has had an ACK or NACK) */
  reported: boolean;
}

const DEFAULT_CHANNEL_OPTIONS: ChannelOptions = {
  // Notice a vanished control plane without waiting for TCP timeouts. The
  // ping may wait 20 s for its answer (gRPC's default): an event loop
  // starved for 10 s (a loaded agent or control plane) must not tear down a
  // healthy stream, since a fleet reconnecting at once costs far more than
  // noticing a dead control plane 10 s later.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 20_000,
  // A full ipcache part (hundreds of thousands of prefixes) exceeds the 4 MiB default.
  'grpc.max_receive_message_length': 256 * 1024 * 1024,
  // One long-lived stream: the agent reconnects and resumes by itself, so
  // grpc-js's transparent retry layer (which buffers every write until the
  // call commits) and its channelz bookkeeping per message are pure cost.
  'grpc.enable_retries': 0,
  'grpc.enable_channelz': 0,
  // HTTP/2 flow-control window of the stream (64 KiB by default): what the
  // control plane may have in flight to this agent. It buffers that much per
  // connection (TLS output) and keeps the buffers, so a smaller window is
  // less control plane memory per agent; deltas are far smaller, and a full
  // sync takes a few more round trips.
  'grpc-node.flow_control_window': 16 * 1024,
};

const monotonicClock: Clock = { now: () => performance.now() };

/**
 * The node agent: keeps one DeltaResources stream to the control plane open
 * (reconnecting with backoff), applies each revision to the datapath as one
 * unit and ACKs or NACKs it, and periodically verifies the datapath. Holds no
 * authority: while the control plane is away it keeps enforcing the last
 * applied state, and stopping leaves the datapath as it is.
 */
export class NodeAgent {
  readonly #opts: NodeAgentOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #events: AgentEvents;
  readonly #store: ResourceStore;
  readonly #applier: RevisionApplier;
  readonly #queue = new SerialQueue();
  #controller: AbortController | undefined;
  #loops: Promise<void>[] = [];
  #client: MeshDiscoveryClient | undefined;
  /** the open stream, and whether it has carried an ACK/NACK yet */
  #stream: { stream: SessionStream; answered: boolean } | undefined;
  #connection: ConnectionState = 'idle';
  #connectionSince: number;
  #attempts = 0;
  #lastApplied: NodeAgentStatus['lastApplied'];
  #lastRejected: NodeAgentStatus['lastRejected'];
  #lastVerification: NodeAgentStatus['lastVerification'];
  #lastError: NodeAgentStatus['lastError'];

  constructor(opts: NodeAgentOptions) {
    this.#opts = opts;
    this.#logger = opts.logger ?? silentLogger;
    this.#clock = opts.clock ?? systemClock;
    this.#events = new AgentEvents(this.#logger);
    this.#store = new ResourceStore(opts.shardPool ? { shards: opts.shardPool } : {});
    this.#applier = new RevisionApplier(
      this.#store,
      opts.datapath,
      opts.monotonic ?? monotonicClock,
    );
    this.#connectionSince = this.#clock.now();
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends NodeAgentEventName>(
    event: K,
    listener: (e: NodeAgentEvents[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /** Starts connecting; returns at once. Throws if already started. */
  start(): void {
    if (this.#controller !== undefined)
      throw new MeshError('INTERNAL', 'node agent already started');
    const controller = new AbortController();
    this.#controller = controller;
    this.#client = new DiscoveryClient(
      this.#opts.server,
      this.#opts.credentials ?? grpcCredentials.createInsecure(),
      {
        ...DEFAULT_CHANNEL_OPTIONS,
        // The agent's own backoff (capped at seconds) decides when to retry;
        // grpc-js's connection backoff (up to 120 s by default) would otherwise
        // keep a channel in TRANSIENT_FAILURE long after the control plane is
        // back, failing every attempt with "No connection established".
        'grpc.initial_reconnect_backoff_ms': this.#opts.backoff?.initialMs ?? 100,
        'grpc.max_reconnect_backoff_ms': this.#opts.backoff?.maxMs ?? 5_000,
        ...this.#opts.channelOptions,
      },
    );
    this.#loops = [
      this.#connectLoop(this.#client, controller.signal),
      this.#verifyLoop(controller.signal),
    ];
  }

  /** Closes the stream and waits for the agent to go idle. Leaves the datapath as it is. Idempotent. */
  async stop(): Promise<void> {
    const controller = this.#controller;
    if (controller === undefined) return;
    controller.abort(new MeshError('UNAVAILABLE', 'node agent stopping'));
    await Promise.allSettled(this.#loops);
    this.#client?.close();
    this.#setConnection('stopped');
  }

  status(): NodeAgentStatus {
    const { datapath } = this.#opts;
    return {
      node: { ...this.#opts.node },
      server: this.#opts.server,
      connection: this.#connection,
      connectionSince: this.#connectionSince,
      attempts: this.#attempts,
      appliedRevision: this.#applier.appliedRevision,
      digest: datapath.digest(),
      resources: this.#store.size,
      lastApplied: this.#lastApplied,
      lastRejected: this.#lastRejected,
      lastVerification: this.#lastVerification,
      lastError: this.#lastError,
      datapath: { capacity: { ...datapath.capacity }, counts: datapath.counts() },
    };
  }

  /** Re-reads the whole datapath now and reports the digest if a stream is up. */
  verifyNow(opts: { signal?: AbortSignal } = {}): Promise<VerificationResult> {
    return this.#queue.run(async () => {
      const { datapath } = this.#opts;
      const expected = datapath.digest();
      const digest = await datapath.verify(opts);
      const revision = this.#applier.appliedRevision;
      const current = this.#stream;
      const reported = current !== undefined && current.answered && current.stream.open;
      if (reported) current.stream.send(verificationRequest({ revision, digest }));
      const result: VerificationResult = {
        revision,
        digest,
        expected,
        matches: digest === expected,
        reported,
      };
      this.#lastVerification = { digest, matches: result.matches, at: this.#clock.now() };
      if (!result.matches) {
        this.#logger.warn('datapath differs from the state the agent applied', {
          revision,
          digest,
          expected,
        });
      }
      this.#events.emit('verified', { ...result });
      return result;
    });
  }

  #setConnection(state: ConnectionState): void {
    if (state === this.#connection) return;
    this.#connection = state;
    this.#connectionSince = this.#clock.now();
  }

  async #connectLoop(client: MeshDiscoveryClient, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#opts.backoff, this.#opts.random);
    const sleep = this.#opts.sleep ?? abortableSleep;
    const { datapath, node } = this.#opts;
    while (!signal.aborted) {
      this.#attempts += 1;
      const attempt = this.#attempts;
      this.#setConnection('connecting');
      let wasConnected = false;
      const end = await runSession({
        client,
        first: firstRequest(node, datapath.capacity, this.#store.versions()),
        monotonic: this.#opts.monotonic ?? monotonicClock,
        signal,
        onOpen: (stream) => {
          wasConnected = true;
          this.#stream = { stream, answered: false };
          this.#setConnection('connected');
          this.#logger.info('connected to control plane', { server: this.#opts.server, attempt });
          this.#events.emit('connected', { at: this.#clock.now(), attempt });
        },
        onRevision: (revision, stream) => this.#onRevision(revision, stream, signal),
      });
      this.#stream = undefined;
      if (signal.aborted) break;
      // A refusal (wrong certificate, another protocol) keeps backing off to the cap.
      const refused =
        end.error?.code === 'PERMISSION_DENIED' ||
        end.error?.code === 'UNAUTHENTICATED' ||
        end.error?.code === 'PROTOCOL_MISMATCH';
      if (end.progressed && !refused) backoff.reset();
      const retryInMs = backoff.next();
      const error = end.error;
      if (error !== undefined)
        this.#lastError = { code: error.code, message: error.message, at: this.#clock.now() };
      const fields = { code: error?.code, error: error?.message, retryInMs, wasConnected, attempt };
      if (error?.code === 'PROTOCOL_MISMATCH') {
        this.#logger.error(`protocol mismatch: ${error.message}`, fields);
      } else {
        this.#logger.warn(
          'discovery stream ended; enforcing the last applied state until reconnected',
          fields,
        );
      }
      this.#events.emit('disconnected', { at: this.#clock.now(), wasConnected, error, retryInMs });
      this.#setConnection('backoff');
      try {
        await sleep(retryInMs, signal);
      } catch {
        break; // stopping
      }
    }
  }

  #onRevision(rev: AssembledRevision, stream: SessionStream, signal: AbortSignal): Promise<void> {
    // The ACK goes out inside the queue so a verification never overtakes it.
    return this.#queue.run(async () => {
      const outcome = await this.#applier.apply(rev, signal);
      const at = this.#clock.now();
      if (outcome.kind === 'applied') {
        stream.send(ackRequest({ nonce: rev.nonce, ...outcome }));
        this.#lastApplied = { revision: outcome.revision, durationUs: outcome.durationUs, at };
        this.#logger.info('revision applied', {
          ...outcome,
          parts: rev.parts.length,
          // what this revision carried: a reconnect that holds everything shows 0 here
          changed: rev.parts.reduce(
            (n, p) => n + p.resources.length + p.removedResources.length,
            0,
          ),
        });
        this.#events.emit('revisionApplied', {
          revision: outcome.revision,
          durationUs: outcome.durationUs,
          digest: outcome.digest,
          resources: this.#store.size,
          traceContext: { ...rev.parts.at(-1)?.traceContext },
        });
      } else {
        stream.send(nackRequest({ nonce: rev.nonce, ...outcome, error: outcome.detail }));
        const { detail } = outcome;
        this.#lastRejected = {
          revision: outcome.revision,
          code: outcome.error.code,
          message: detail.message,
          resourceNames: [...detail.resourceNames],
          at,
        };
        this.#logger.warn('revision rejected; keeping the last good state', {
          revision: outcome.revision,
          heldRevision: outcome.heldRevision,
          code: outcome.error.code,
          error: detail.message,
          resources: detail.resourceNames,
        });
        this.#events.emit('revisionRejected', {
          revision: outcome.revision,
          traceContext: { ...rev.parts.at(-1)?.traceContext },
          heldRevision: outcome.heldRevision,
          digest: outcome.digest,
          error: outcome.error,
          detail,
        });
      }
      if (this.#stream?.stream === stream) this.#stream.answered = true;
    });
  }

  async #verifyLoop(signal: AbortSignal): Promise<void> {
    const interval = this.#opts.verifyIntervalMs ?? 60_000;
    if (interval <= 0) return;
    const sleep = this.#opts.sleep ?? abortableSleep;
    for (;;) {
      try {
        await sleep(interval, signal);
        await this.verifyNow({ signal });
      } catch (err) {
        if (signal.aborted) return;
        this.#logger.warn('datapath verification failed', { error: String(err) });
      }
    }
  }
}
