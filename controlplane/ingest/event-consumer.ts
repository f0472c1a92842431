import { DeliverPolicy, RetentionPolicy, StorageType, type JsMsg, type NatsConnection } from 'nats';
import {
  AsyncQueue,
  CHANGE_SET_HEADER,
  CHANGE_SET_PART_HEADER,
  EVENTS_STREAM,
  MeshError,
  SUBJECT_EVENTS_PREFIX,
  SUBJECT_HEALTH_PREFIX,
  TRACEPARENT_HEADER,
  TRACE_LINKS_HEADER,
  formatIssue,
  isMeshError,
  parseEventsSubject,
  parsePartHeader,
  sleep,
  type ChangeSetEvent,
  type Logger,
  type SourceHealthEvent,
} from '../../common/index.js';
import { ChangeSetAssembler, type AbandonedChangeSet } from './assembler.js';
import type { ChangeSetCommitter, CommitItem, CommitOutcome } from './committer.js';
import type { SourceRegistry } from './source-registry.js';
import { validateChangeSet } from './validate-event.js';

export interface EventConsumerOptions {
  /** redelivery delay after a transient failure (etcd unavailable) */
  retryDelayMs?: number;
  /** change sets taken from the stream at once and folded per cluster (default 256) */
  batch?: number;
  /**
   * Told of every refused change set, so whoever waits for that sequence to
   * commit (`meshctl apply`) learns it never will. Must not throw.
   */
  onRefused?: (cluster: string, sequence: number, error: string) => void;
}

/** A whole change set, validated and put back together from its parts. */
interface Valid {
  /** the stream sequence of its last part: the cluster's position once committed */
  seq: number;
  event: ChangeSetEvent;
}

/**
 * Consumes change sets from JetStream and commits them to etcd. Only the
 * elected replica runs it (see ControlPlane), reading the stream in order
 * with an ordered consumer (no acknowledgements, no state kept in NATS):
 * how far ingestion got is each cluster's source position, written in etcd
 * in the same transaction as its change sets. A durable consumer that acks
 * after the commit would not make this safer, and would make it worse:
 * - commit and position are one transaction, so they can never disagree;
 *   an ack after the commit can be lost (a crash in between), so the
 *   position in etcd would be needed to drop the redelivery anyway;
 * - a new leader starts from the positions in etcd, which are exact, not
 *   from an ack floor that lags them (or, if acked early, leads them and
 *   loses events), and a deposed leader holds no consumer state the new one
 *   must wait out or share;
 * - redelivery after an ack timeout comes after later messages, which would
 *   reorder a cluster's change sets (and their parts); an ordered consumer
 *   delivers in stream order, and the stream keeps every message (limits
 *   retention) for anyone else following a cluster or a kind.
 * A change set arrives as one message per kind it names
 * (`meshplane.events.<cluster>.<kind>`, see splitChangeSet) or as one whole
 * message (`meshplane.events.<cluster>`); the parts are put back together
 * (ChangeSetAssembler) and only a complete change set is committed. What
 * has arrived is taken as a batch, folded per cluster (`mergeChangeSets`)
 * and committed in one transaction (every cluster's fold, each with its own
 * guards: one mesh revision per batch). Malformed or refused change sets
 * are reported on the cluster's source status and never retried; transient
 * failures (etcd unavailable) are retried.
 */
export class EventConsumer {
  readonly #nc: NatsConnection;
  readonly #committer: ChangeSetCommitter;
  readonly #sources: SourceRegistry;
  readonly #log: Logger;
  readonly #startAfter: (epoch: string) => Promise<number>;
  readonly #retryDelayMs: number;
  readonly #batch: number;
  readonly #onRefused: EventConsumerOptions['onRefused'];
  #epoch: string | undefined;
  /** change sets waiting for their other parts; a new one per run (it re-reads from the positions) */
  #assembler = new ChangeSetAssembler();

  constructor(
    nc: NatsConnection,
    committer: ChangeSetCommitter,
    sources: SourceRegistry,
    log: Logger,
    startAfter: (epoch: string) => Promise<number>,
    opts: EventConsumerOptions = {},
  ) {
    this.#nc = nc;
    this.#committer = committer;
    this.#sources = sources;
    this.#log = log;
    this.#startAfter = startAfter;
    this.#retryDelayMs = opts.retryDelayMs ?? 1000;
    this.#batch = opts.batch ?? 256;
    this.#onRefused = opts.onRefused;
  }

  /**
   * Creates the stream if missing. Awaited before
   * the control plane reports ready, so events published after that are
   * never refused for want of a stream.
   */
  async prepare(): Promise<void> {
    this.#epoch = await this.#ensureStream();
  }

  /** Source health is bookkeeping every replica keeps; runs until the signal aborts. */
  watchHealth(signal: AbortSignal): void {
    const sub = this.#nc.subscribe(`${SUBJECT_HEALTH_PREFIX}.>`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.#sources.onHealth(msg.json<SourceHealthEvent>());
        } catch {
          this.#log.warn('malformed source health event', { subject: msg.subject });
        }
      },
    });
    signal.addEventListener('abort', () => sub.unsubscribe(), { once: true });
  }

  /** The stream's identity (creation time) and its last sequence. */
  async streamPosition(): Promise<{ epoch: string; sequence: number }> {
    const info = await (await this.#nc.jetstreamManager()).streams.info(EVENTS_STREAM);
    return { epoch: info.created, sequence: info.state.last_seq };
  }

  /**
   * Consumes until the signal aborts; rejects on an unrecoverable NATS error.
   * etcd, not a durable consumer, remembers how far ingestion got: reading
   * starts after the lowest position any member cluster has committed, in
   * order (an ordered consumer), and positions already committed are
   * skipped. So a crash between commit and anything else, or a new leader,
   * never reorders or loses a change set.
   */
  async run(signal: AbortSignal): Promise<void> {
    const epoch = this.#epoch ?? (await this.#ensureStream());
    const after = await this.#startAfter(epoch);
    this.#log.info('consuming change sets', { startSequence: after + 1 });
    const consumer = await this.#nc.jetstream().consumers.get(EVENTS_STREAM, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
    });
    this.#assembler = new ChangeSetAssembler();
    const messages = await consumer.consume({ max_messages: this.#batch });
    const buffer = new AsyncQueue<JsMsg>();
    const stop = (): void => {
      void messages.close();
      buffer.end();
    };
    signal.addEventListener('abort', stop, { once: true });
    const pump = (async () => {
      for await (const m of messages) buffer.push(m);
      buffer.end();
    })();
    try {
      const it = buffer[Symbol.asyncIterator]();
      while (!signal.aborted) {
        const first = await it.next();
        if (first.done) break;
        const batch = [first.value, ...buffer.take(this.#batch - 1)];
        await this.#handleBatch(batch, epoch, signal);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
      await pump.catch(() => undefined);
    }
  }

  async #handleBatch(batch: JsMsg[], epoch: string, signal: AbortSignal): Promise<void> {
    const byCluster = new Map<string, Valid[]>();
    for (const m of batch) {
      const subject = parseEventsSubject(m.subject);
      // An unparsable subject is still charged to its cluster token (a source may publish only its own).
      const cluster =
        subject?.cluster ?? m.subject.slice(SUBJECT_EVENTS_PREFIX.length + 1).split('.')[0]!;
      const changeSet = m.headers?.get(CHANGE_SET_HEADER) || undefined;
      const partHeader = m.headers?.get(CHANGE_SET_PART_HEADER) || undefined;
      const part = partHeader === undefined ? { index: 1, count: 1 } : parsePartHeader(partHeader);
      const refuse = (error: string): void => {
        this.#abandoned(this.#assembler.refuse(cluster, changeSet));
        this.#refuse(m.seq, cluster, error);
      };
      if (!subject) {
        refuse(`not an events subject: ${m.subject}`);
        continue;
      }
      if (!part || (partHeader !== undefined && changeSet === undefined)) {
        refuse(`malformed part headers (${CHANGE_SET_HEADER}, ${CHANGE_SET_PART_HEADER})`);
        continue;
      }
      let raw: unknown;
      try {
        raw = m.json();
      } catch {
        refuse('payload is not JSON');
        continue;
      }
      const checked = validateChangeSet(raw, cluster, subject.kind);
      if (!checked.ok) {
        refuse(checked.errors.map(formatIssue).join('; '));
        continue;
      }
      const traceparent = m.headers?.get(TRACEPARENT_HEADER);
      const traceLinks = traceLinksOf(m.headers?.get(TRACE_LINKS_HEADER));
      const event = {
        ...checked.value,
        ...(traceparent ? { traceparent } : {}),
        ...(traceLinks.length > 0 ? { traceLinks } : {}),
      };
      const out = this.#assembler.add({ cluster, seq: m.seq, changeSet, ...part, event });
      this.#abandoned(out.abandoned);
      if (out.refused) {
        this.#refuse(m.seq, cluster, 'a part of its change set was refused, or its parts disagree');
        continue;
      }
      if (!out.complete) continue;
      const list = byCluster.get(cluster) ?? [];
      list.push({ seq: out.complete.seq, event: out.complete.event });
      byCluster.set(cluster, list);
    }
    // Clusters are independent; within one, order is kept by the fold. All
    // clusters' groups go into one transaction (one mesh revision); if that
    // fails, each is committed on its own, which finds a refused one and
    // retries transient failures.
    if (byCluster.size === 0) return;
    if (byCluster.size > 1) {
      const groups = [...byCluster];
      try {
        const outs = await this.#committer.commitClusters(
          groups.map(([, group]) => this.#items(group, epoch)),
          { signal },
        );
        outs.forEach((out, i) => this.#committed(groups[i]![0], groups[i]![1], out));
        return;
      } catch (err) {
        if (signal.aborted) return;
        this.#log.info('change sets of several clusters not committed together; one by one', {
          clusters: groups.map(([c]) => c),
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    for (const [cluster, group] of byCluster)
      await this.#commitGroup(cluster, group, epoch, signal);
  }

  #items(group: readonly Valid[], epoch: string): CommitItem[] {
    return group.map((g) => ({ event: g.event, position: { epoch, sequence: g.seq } }));
  }

  /** A change set some parts of which arrived, given up for a newer one of its cluster. */
  #abandoned(a: AbandonedChangeSet | undefined): void {
    if (!a) return;
    this.#log.warn('incomplete change set dropped: a newer one of its cluster arrived first', {
      cluster: a.cluster,
      changeSet: a.changeSet,
      partsReceived: a.seqs.length,
      parts: a.count,
      sequences: a.seqs,
    });
  }

  #committed(cluster: string, group: readonly Valid[], out: CommitOutcome): void {
    if (out.status !== 'committed') return;
    this.#sources.onCommitted(cluster);
    this.#log.info('change sets committed', {
      cluster,
      changeSets: group.length,
      sequence: group.at(-1)!.seq,
      revision: out.revision,
      identitiesAllocated: out.allocated,
      traceparents: group.flatMap((g) => (g.event.traceparent ? [g.event.traceparent] : [])),
    });
  }

  async #commitGroup(
    cluster: string,
    group: Valid[],
    epoch: string,
    signal: AbortSignal,
  ): Promise<void> {
    const last = group.at(-1)!.seq;
    try {
      this.#committed(
        cluster,
        group,
        await this.#committer.commitMany(this.#items(group, epoch), { signal }),
      );
    } catch (err) {
      if (isRefusal(err)) {
        if (group.length > 1) {
          // Find the culprit: commit one at a time; the good ones still land.
          for (const g of group) await this.#commitGroup(cluster, [g], epoch, signal);
          return;
        }
        this.#refuse(last, cluster, err.message);
        return;
      }
      if (signal.aborted) return; // the next leader reads from etcd's position
      this.#log.warn('change sets not committed; retrying', {
        cluster,
        sequence: last,
        error: err instanceof Error ? err.message : String(err),
      });
      await sleep(this.#retryDelayMs, signal).catch(() => undefined);
      if (!signal.aborted) await this.#commitGroup(cluster, group, epoch, signal);
    }
  }

  #refuse(sequence: number, cluster: string, error: string): void {
    this.#log.error('change set refused', { cluster, sequence, error });
    this.#sources.onRefused(cluster, error);
    this.#onRefused?.(cluster, sequence, error);
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
        // Another replica may have created it concurrently.
        info = await jsm.streams.info(EVENTS_STREAM).catch(() => {
          throw new MeshError('UNAVAILABLE', `cannot create JetStream stream ${EVENTS_STREAM}`, {
            cause: err,
          });
        });
      }
    }
    return info.created;
  }
}

function isRefusal(err: unknown): err is MeshError {
  return (
    isMeshError(err, 'CLUSTER_CLASH') ||
    isMeshError(err, 'NOT_MEMBER') ||
    isMeshError(err, 'IDENTITY_EXHAUSTED') ||
    isMeshError(err, 'VALIDATION')
  );
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
/** At most this many links per change set are kept (they are written to etcd with its position). */
const MAX_TRACE_LINKS = 16;

/** The well-formed traceparents of a TRACE_LINKS_HEADER value (comma-separated). */
function traceLinksOf(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((t) => t.trim())
    .filter((t) => TRACEPARENT.test(t))
    .slice(0, MAX_TRACE_LINKS);
}
