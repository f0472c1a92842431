import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import {
  EVENTS_STREAM,
  MeshError,
  SUBJECT_EVENTS_PREFIX,
  SUBJECT_HEALTH_PREFIX,
  formatIssue,
  isMeshError,
  type Logger,
  type SourceHealthEvent,
} from '../../common/index.js';
import type { ChangeSetCommitter } from './committer.js';
import type { SourceRegistry } from './source-registry.js';
import { validateChangeSet } from './validate-event.js';

export interface EventConsumerOptions {
  durable?: string;
  /** redelivery delay after a transient failure (etcd unavailable) */
  retryDelayMs?: number;
}

/**
 * Consumes change sets from JetStream with a durable consumer, in order
 * (max one unacknowledged message), and commits each to etcd. A consumer
 * that was away resumes from its last acknowledged sequence. Malformed or
 * refused change sets are terminated (not retried) and reported on the
 * cluster's source status; transient failures are redelivered.
 */
export class EventConsumer {
  readonly #nc: NatsConnection;
  readonly #committer: ChangeSetCommitter;
  readonly #sources: SourceRegistry;
  readonly #log: Logger;
  readonly #durable: string;
  readonly #retryDelayMs: number;
  readonly #onCommitted: (revision: number) => void;

  constructor(
    nc: NatsConnection,
    committer: ChangeSetCommitter,
    sources: SourceRegistry,
    log: Logger,
    onCommitted: (revision: number) => void,
    opts: EventConsumerOptions = {},
  ) {
    this.#nc = nc;
    this.#committer = committer;
    this.#sources = sources;
    this.#log = log;
    this.#durable = opts.durable ?? 'meshplane-controlplane';
    this.#retryDelayMs = opts.retryDelayMs ?? 1000;
    this.#onCommitted = onCommitted;
  }

  #epoch: string | undefined;

  /**
   * Creates the stream (if missing) and the durable consumer. Awaited before
   * the control plane reports ready, so events published after that are
   * never refused for want of a stream.
   */
  async prepare(): Promise<void> {
    this.#epoch = await this.#ensureStream();
  }

  /** Runs until the signal aborts; rejects on an unrecoverable NATS error. */
  async run(signal: AbortSignal): Promise<void> {
    const epoch = this.#epoch ?? (await this.#ensureStream());
    const health = this.#nc.subscribe(`${SUBJECT_HEALTH_PREFIX}.>`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.#sources.onHealth(msg.json<SourceHealthEvent>());
        } catch {
          this.#log.warn('malformed source health event', { subject: msg.subject });
        }
      },
    });
    const consumer = await this.#nc.jetstream().consumers.get(EVENTS_STREAM, this.#durable);
    const messages = await consumer.consume({ max_messages: 1 });
    const stop = (): void => {
      void messages.close();
      health.unsubscribe();
    };
    signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const m of messages) {
        if (signal.aborted) break;
        await this.#handle(m, epoch, signal);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
  }

  async #handle(m: JsMsg, epoch: string, signal: AbortSignal): Promise<void> {
    const cluster = m.subject.slice(SUBJECT_EVENTS_PREFIX.length + 1);
    let raw: unknown;
    try {
      raw = m.json();
    } catch {
      this.#refuse(m, cluster, 'payload is not JSON');
      return;
    }
    const checked = validateChangeSet(raw, cluster);
    if (!checked.ok) {
      this.#refuse(m, cluster, checked.errors.map(formatIssue).join('; '));
      return;
    }
    try {
      const out = await this.#committer.commit(
        checked.value,
        { epoch, sequence: m.seq },
        { signal },
      );
      m.ack();
      if (out.status === 'committed') {
        this.#sources.onCommitted(cluster);
        this.#log.info('change set committed', {
          cluster,
          sequence: m.seq,
          revision: out.revision,
          upserts: checked.value.upserts.length,
          deletes: checked.value.deletes.length,
          full: checked.value.full,
          identitiesAllocated: out.allocated,
        });
        this.#onCommitted(out.revision);
      }
    } catch (err) {
      if (
        isMeshError(err, 'CLUSTER_CLASH') ||
        isMeshError(err, 'NOT_MEMBER') ||
        isMeshError(err, 'IDENTITY_EXHAUSTED') ||
        isMeshError(err, 'VALIDATION')
      ) {
        this.#refuse(m, cluster, err.message);
        return;
      }
      if (signal.aborted) return; // redelivered to whoever consumes next
      this.#log.warn('change set not committed; will be redelivered', {
        cluster,
        sequence: m.seq,
        error: err instanceof Error ? err.message : String(err),
      });
      m.nak(this.#retryDelayMs);
    }
  }

  #refuse(m: JsMsg, cluster: string, error: string): void {
    this.#log.error('change set refused', { cluster, sequence: m.seq, error });
    this.#sources.onRefused(cluster, error);
    m.term();
  }

  async #ensureStream(): Promise<string> {
    const jsm = await this.#nc.jetstreamManager();
    let info;
    try {
      info = await jsm.streams.info(EVENTS_STREAM);
    } catch {
      try {
        info = await jsm.streams.add({
          name: EVENTS_STREAM,
          subjects: [`${SUBJECT_EVENTS_PREFIX}.>`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
        });
      } catch (err) {
        // Another process (a source) may have created it concurrently.
        info = await jsm.streams.info(EVENTS_STREAM).catch(() => {
          throw new MeshError('UNAVAILABLE', `cannot create JetStream stream ${EVENTS_STREAM}`, {
            cause: err,
          });
        });
      }
    }
    await jsm.consumers.add(EVENTS_STREAM, {
      durable_name: this.#durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: 1,
      ack_wait: 30_000_000_000,
    });
    return info.created;
  }
}
