import type { Clock, Logger, SourceHealthEvent } from '../../../common/index.js';
import { SUBJECT_HEALTH_PREFIX } from '../../../common/index.js';
import type { EventSink } from './event-sink.js';
import type { Timers } from './timers.js';

export interface HealthReporterOptions {
  sink: EventSink;
  origin: string;
  clock: Clock;
  timers: Timers;
  intervalMs: number;
  logger: Logger;
}

/**
 * Publishes a source's SourceHealthEvent on core NATS when it starts, when
 * lastError changes, and every interval. Nothing is sent while the cluster's
 * name is unknown (its cluster.yaml never loaded).
 */
export class HealthReporter {
  readonly #opts: HealthReporterOptions;
  #cluster: string | undefined;
  #lastError = '';
  #interval: unknown;

  constructor(opts: HealthReporterOptions) {
    this.#opts = opts;
  }

  get lastError(): string {
    return this.#lastError;
  }

  start(): void {
    if (this.#interval !== undefined) return;
    this.#interval = this.#opts.timers.setInterval(() => this.publish(), this.#opts.intervalMs);
    this.publish();
  }

  stop(): void {
    if (this.#interval !== undefined) this.#opts.timers.clearInterval(this.#interval);
    this.#interval = undefined;
  }

  /** The cluster to report under (`meshplane.health.<cluster>`). */
  setCluster(name: string): void {
    this.#cluster = name;
  }

  /** '' when the last change set was good. Publishes at once when it changed. */
  setError(lastError: string): void {
    if (lastError === this.#lastError) return;
    this.#lastError = lastError;
    if (this.#interval !== undefined) this.publish();
  }

  publish(): void {
    if (this.#cluster === undefined) return;
    const event: SourceHealthEvent = {
      apiVersion: 'meshplane/v1',
      cluster: this.#cluster,
      origin: this.#opts.origin,
      at: this.#opts.clock.now(),
      lastError: this.#lastError,
    };
    try {
      this.#opts.sink.publishHealth(
        `${SUBJECT_HEALTH_PREFIX}.${this.#cluster}`,
        new TextEncoder().encode(JSON.stringify(event)),
      );
    } catch (err) {
      // A closed or draining connection; the next interval tries again.
      this.#opts.logger.warn('publishing health failed', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
