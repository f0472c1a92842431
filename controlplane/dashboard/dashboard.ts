import type { RequestListener } from 'node:http';
import type { Clock, Logger } from '../../common/index.js';
import { DashboardFeed } from './feed.js';
import { DashboardServer } from './server.js';
import { TrackerDashboardSource, type TrackerReads } from './tracker-source.js';

export interface DashboardOptions {
  tracker: TrackerReads;
  clock: Clock;
  log: Logger;
  /** HOST:PORT (port 0 = any); no authentication, so loopback unless a proxy guards it */
  listen: string;
  /** at most this many pushes per second to each page (default 4) */
  maxUpdatesPerSecond?: number;
  /** more GET routes on the same port, e.g. '/metrics' */
  routes?: Readonly<Record<string, RequestListener>>;
}

/**
 * The live dashboard of one control plane replica: the tracker adapted to
 * what the page shows, a coalescing feed of deltas, and the HTTP server.
 */
export class Dashboard {
  readonly #source: TrackerDashboardSource;
  readonly #feed: DashboardFeed;
  readonly #server: DashboardServer;

  constructor(opts: DashboardOptions) {
    this.#source = new TrackerDashboardSource(opts.tracker, opts.clock);
    this.#feed = new DashboardFeed(this.#source, {
      clock: opts.clock,
      ...(opts.maxUpdatesPerSecond !== undefined
        ? { maxUpdatesPerSecond: opts.maxUpdatesPerSecond }
        : {}),
    });
    this.#server = new DashboardServer({
      listen: opts.listen,
      feed: this.#feed,
      history: (c, n) => this.#source.history(c, n),
      log: opts.log,
      ...(opts.routes ? { routes: opts.routes } : {}),
    });
  }

  /** http://HOST:PORT/ once started; '' before */
  get url(): string {
    return this.#server.url;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<{ url: string }> {
    this.#feed.start();
    try {
      return await this.#server.start(opts);
    } catch (err) {
      this.#feed.stop();
      this.#source.close();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.#server.stop();
    this.#feed.stop();
    this.#source.close();
  }
}
