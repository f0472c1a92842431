import type { Clock } from '../../common/index.js';
import type { DashboardSource } from './source.js';
import { diffState, readState } from './state.js';
import type { WireDelta, WireState } from './wire.js';

export interface FeedTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: FeedTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface DashboardFeedOptions {
  clock: Clock;
  /** at most this many updates per second, however often the source changes (default 4) */
  maxUpdatesPerSecond?: number;
  timers?: FeedTimers;
}

export interface FeedUpdate {
  delta: WireDelta;
  /** `delta` as JSON, encoded once for every subscriber */
  json: string;
}

/**
 * Turns tracker changes into a bounded stream of compact deltas: a change
 * schedules one update (immediately if the last one is older than the
 * interval, else at the end of it); everything that changed meanwhile goes
 * into that one update. Every subscriber gets the same deltas after the same
 * published state, so a page that starts from `current()` stays consistent.
 */
export class DashboardFeed {
  readonly #source: DashboardSource;
  readonly #clock: Clock;
  readonly #timers: FeedTimers;
  readonly #intervalMs: number;
  readonly #listeners = new Set<(u: FeedUpdate) => void>();
  #state: WireState;
  #timer: unknown;
  #lastPublishAt = Number.NEGATIVE_INFINITY;
  #unsubscribe: (() => void) | undefined;

  constructor(source: DashboardSource, opts: DashboardFeedOptions) {
    this.#source = source;
    this.#clock = opts.clock;
    this.#timers = opts.timers ?? realTimers;
    this.#intervalMs = 1000 / (opts.maxUpdatesPerSecond ?? 4);
    this.#state = {
      seq: 0,
      now: opts.clock.now(),
      revision: 0,
      commitTime: 0,
      bucketsMs: [...source.latencyBucketsMs],
      nodes: [],
      revisions: [],
      errors: [],
    };
  }

  /** Reads the source once and follows its changes. Idempotent. */
  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#source.subscribe(() => this.#schedule());
    this.#publish();
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  /** The last published state (shared: callers must not modify it). */
  current(): WireState {
    return this.#state;
  }

  /** Listeners must not throw; each gets every update after it subscribed. */
  subscribe(listener: (u: FeedUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastPublishAt + this.#intervalMs - this.#clock.now());
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      // A busy event loop can fire a timer early by its stale clock: keep the bound.
      if (this.#clock.now() - this.#lastPublishAt < this.#intervalMs) this.#schedule();
      else this.#publish();
    }, wait);
  }

  #publish(): void {
    const now = this.#clock.now();
    this.#lastPublishAt = now;
    const next = readState(this.#source, this.#state.seq + 1, now);
    const delta = diffState(this.#state, next);
    if (!delta) return;
    this.#state = next;
    const update = { delta, json: JSON.stringify(delta) };
    for (const l of this.#listeners) l(update);
  }
}
