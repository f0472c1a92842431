import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ChangeSetEvent, Logger } from '../../../common/index.js';
import {
  MeshError,
  eventsSubject,
  isMeshError,
  objectKey,
  splitChangeSet,
} from '../../../common/index.js';
import type { ClusterState } from './change-set.js';
import { diffChangeSet } from './change-set.js';
import type { EventSink } from './event-sink.js';
import type { Backoff, Timers } from './timers.js';
import { backoffDelay, pause } from './timers.js';

export interface PublisherOptions {
  sink: EventSink;
  origin: string;
  timers: Timers;
  backoff: Backoff;
  logger: Logger;
  signal: AbortSignal;
  /** after each acknowledged change set, with its stream sequence */
  onPublished: (event: ChangeSetEvent, seq: number) => void;
  /** a change set that can never be published as it is (too large); cleared by the next good one */
  onRejected: (message: string) => void;
}

/**
 * Brings the events stream to the newest desired state with one change set
 * in flight at a time. The published state moves only when the PubAck came
 * back; a failed publish is retried with backoff, re-diffed against the
 * newest desired state, so a change is never lost and a burst of changes
 * during an outage goes out as one change set.
 */
export class ChangeSetPublisher {
  readonly #opts: PublisherOptions;
  #published: ClusterState | undefined;
  #desired: ClusterState | undefined;
  #running = false;
  #done: Promise<void> = Promise.resolve();
  #streamReady = false;
  // Same content after a lost PubAck keeps its id, so JetStream drops the duplicate.
  readonly #instance = randomUUID();
  #generation = 0;
  #forceFull = false;
  /**
   * What delta change sets whose publish failed may have changed: the stream
   * may hold them even without a PubAck, so the next change set re-sends
   * those keys as they are now desired (see diffChangeSet).
   */
  #uncertain: { keys: Set<string>; spec: boolean } | undefined;
  /** how many desired states were set; a waiter waits for a publish of its state or a later one */
  #desiredGeneration = 0;
  #lastSequence: number | undefined;
  #waiters: PublishWaiter[] = [];
  /** callers' trace contexts for the next change set (see setDesired) */
  #traceparents: string[] = [];
  /** the newest generation whose waiters were answered, and with what */
  #answered: { generation: number; sequence: number | undefined; changed: boolean } | undefined;

  constructor(opts: PublisherOptions) {
    this.#opts = opts;
  }

  /** The state last acknowledged by the stream (undefined before the first change set). */
  get published(): ClusterState | undefined {
    return this.#published;
  }

  /**
   * Sets the state to reach and starts publishing towards it. Returns the
   * state's generation, for whenPublished. `traceparents`: the W3C trace
   * contexts of the callers whose change sets this state holds (meshctl
   * apply); the change set that carries it is published with the first as
   * its `traceparent` header and the others as links (a save has none: it
   * gets a fresh one).
   */
  setDesired(state: ClusterState, traceparents: readonly string[] = []): number {
    this.#traceparents.push(...traceparents);
    this.#desired = state;
    this.#desiredGeneration += 1;
    const generation = this.#desiredGeneration;
    if (this.#running || this.#opts.signal.aborted) return generation;
    this.#running = true;
    this.#done = this.#run();
    return generation;
  }

  /**
   * Resolves once the stream holds the desired state of `generation` (or a
   * later one): with the sequence of the change set that carried it, or —
   * `changed: false` — of the last one published when there was nothing new
   * to send. Rejects when that state can never be published as it is (too
   * large) or the publisher stops first.
   */
  whenPublished(generation: number): Promise<{ sequence: number | undefined; changed: boolean }> {
    if (this.#opts.signal.aborted) {
      return Promise.reject(new MeshError('UNAVAILABLE', 'the cluster source is stopping'));
    }
    // setDesired may have found nothing to send (or published) before the caller got here.
    const answered = this.#answered;
    if (answered !== undefined && answered.generation >= generation) {
      return Promise.resolve({ sequence: answered.sequence, changed: answered.changed });
    }
    return new Promise((resolve, reject) => this.#waiters.push({ generation, resolve, reject }));
  }

  #settle(
    generation: number,
    outcome: { sequence: number | undefined; changed: boolean } | Error,
  ): void {
    if (!(outcome instanceof Error) && generation !== Number.POSITIVE_INFINITY) {
      this.#answered = { generation, ...outcome };
    }
    const due = this.#waiters.filter((w) => w.generation <= generation);
    if (due.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.generation > generation);
    for (const w of due) {
      if (outcome instanceof Error) w.reject(outcome);
      else w.resolve(outcome);
    }
  }

  /**
   * Republishes the whole desired state as one full change set (the control
   * plane asked: e.g. the cluster just joined and ignored what came before),
   * in the trace of `traceparents` (the join's caller), if given.
   */
  resync(traceparents: readonly string[] = []): void {
    this.#forceFull = true;
    if (this.#desired !== undefined) this.setDesired(this.#desired, traceparents);
  }

  /** Resolves when nothing is in flight (after stop, once the last attempt settled). */
  settled(): Promise<void> {
    return this.#done;
  }

  async #run(): Promise<void> {
    let attempt = 0;
    // Trace contexts of the states this run publishes: kept across retries
    // (the retry carries their changes), dropped when nothing is left to send.
    const traceparents: string[] = [];
    for (;;) {
      traceparents.push(...this.#traceparents.splice(0));
      const desired = this.#desired;
      const generation = this.#desiredGeneration;
      const full = this.#forceFull;
      this.#forceFull = false;
      const event =
        desired === undefined || this.#opts.signal.aborted
          ? undefined
          : diffChangeSet(
              full ? undefined : this.#published,
              desired,
              this.#opts.origin,
              this.#uncertain,
            );
      if (event === undefined || desired === undefined) {
        // Checked and cleared in one turn, so setDesired never misses a wake-up.
        this.#running = false;
        traceparents.length = 0;
        if (this.#opts.signal.aborted) {
          this.#settle(
            Number.POSITIVE_INFINITY,
            new MeshError('UNAVAILABLE', 'the cluster source stopped before publishing'),
          );
        } else {
          this.#settle(generation, { sequence: this.#lastSequence, changed: false });
        }
        return;
      }
      try {
        const seq = await this.#publish(event, traceparents);
        traceparents.length = 0;
        this.#published = desired;
        this.#uncertain = undefined;
        this.#lastSequence = seq;
        attempt = 0;
        this.#opts.onPublished(event, seq);
        this.#settle(generation, { sequence: seq, changed: true });
      } catch (err) {
        if (full) this.#forceFull = true;
        else if (!isMeshError(err, 'CAPACITY')) this.#remember(event);
        if (this.#opts.signal.aborted) continue;
        if (isMeshError(err, 'CAPACITY')) {
          this.#opts.onRejected(err.message);
          this.#settle(generation, err);
          this.#running = false;
          return;
        }
        // The stream may be what is missing (deleted, or JetStream was reset).
        this.#streamReady = false;
        const delay = backoffDelay(this.#opts.backoff, attempt);
        attempt += 1;
        this.#opts.logger.warn('publishing change set failed; retrying', {
          error: err instanceof Error ? err.message : String(err),
          retryInMs: delay,
        });
        await pause(this.#opts.timers, delay, this.#opts.signal);
      }
    }
  }

  /** A delta change set that may have been stored though its publish failed. */
  #remember(event: ChangeSetEvent): void {
    const u = (this.#uncertain ??= { keys: new Set<string>(), spec: true });
    for (const o of event.upserts) u.keys.add(objectKey(o));
    for (const d of event.deletes) u.keys.add(objectKey(d));
  }

  /**
   * Publishes the change set as one message per object kind
   * (`meshplane.events.<cluster>.<kind>`, see splitChangeSet), back to back,
   * each with the change set's id and its part number; resolves with the
   * last part's stream sequence once every part is acknowledged. A retry of
   * the same content reuses the ids, so JetStream drops the parts it stored
   * already and the control plane sees one complete change set.
   */
  async #publish(event: ChangeSetEvent, traceparents: readonly string[]): Promise<number> {
    const parts = splitChangeSet(event).map((p) => ({
      ...p,
      payload: new TextEncoder().encode(JSON.stringify(p.event)),
    }));
    const max = this.#opts.sink.maxPayload();
    for (const p of parts) {
      if (p.payload.byteLength > max) {
        throw new MeshError(
          'CAPACITY',
          `the ${p.kind} part of a change set is ${p.payload.byteLength} bytes, over the NATS max_payload of ${max} bytes ` +
            `(${p.event.upserts.length} upserts, ${p.event.deletes.length} deletes); raise max_payload`,
        );
      }
    }
    if (!this.#streamReady) {
      await this.#opts.sink.ensureStream();
      this.#streamReady = true;
    }
    const hash = createHash('sha256').update(`${this.#instance}/${this.#generation}/`);
    for (const p of parts) hash.update(p.payload);
    const id = hash.digest('hex').slice(0, 32);
    // A W3C trace context per change set, in a header (the payload, and so
    // the dedup ids, stay the same across retries), so the commit and every
    // node's apply can be tied back to the save — or the meshctl apply, whose
    // context came with its request — that caused them. When one change set
    // carries several callers' applies, it is in the first one's trace and
    // names the others as links.
    const context = traceparents[0] ?? newTraceparent();
    const links = traceparents.slice(1);
    let seq = 0;
    for (const p of parts) {
      seq = await this.#opts.sink.publishEvent(
        eventsSubject(event.cluster.name, p.kind),
        p.payload,
        `${id}.${p.index}`,
        context,
        { changeSet: id, index: p.index, count: p.count },
        links,
      );
    }
    this.#generation += 1;
    return seq;
  }
}

interface PublishWaiter {
  generation: number;
  resolve: (outcome: { sequence: number | undefined; changed: boolean }) => void;
  reject: (err: Error) => void;
}

function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}
