import { AsyncQueue } from '../../common/index.js';
import type { ObservedFlow } from '../../proto/index.js';

export interface FlowBufferOptions {
  /** flows kept for `observe` without -f (the newest; default 10,000) */
  capacity?: number;
  /** flows a live subscriber may fall behind before it loses the oldest (default 10,000) */
  maxQueued?: number;
}

/**
 * The control plane's bounded buffer of recent flows (a ring: the oldest go
 * first) and its live subscribers. Memory is O(capacity + subscribers ×
 * maxQueued) whatever the agents send. In-process only; not shared between
 * replicas.
 */
export class FlowBuffer {
  readonly #ring: (ObservedFlow | undefined)[];
  readonly #maxQueued: number;
  readonly #subscribers = new Set<AsyncQueue<ObservedFlow>>();
  #next = 0;
  #size = 0;
  #sequence = 0;
  /** flows a slow subscriber lost */
  lost = 0;

  constructor(opts: FlowBufferOptions = {}) {
    this.#ring = new Array<ObservedFlow | undefined>(Math.max(1, opts.capacity ?? 10_000));
    this.#maxQueued = opts.maxQueued ?? 10_000;
  }

  /** The sequence number the next flow gets (1, 2, ...). */
  nextSequence(): number {
    return ++this.#sequence;
  }

  get size(): number {
    return this.#size;
  }

  append(flow: ObservedFlow): void {
    this.#ring[this.#next] = flow;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.#size = Math.min(this.#size + 1, this.#ring.length);
    for (const q of this.#subscribers) {
      if (q.size >= this.#maxQueued) {
        q.take(1);
        this.lost += 1;
      }
      q.push(flow);
    }
  }

  /** The buffered flows, oldest first (a copy). */
  recent(): ObservedFlow[] {
    const out: ObservedFlow[] = [];
    const start = (this.#next - this.#size + this.#ring.length) % this.#ring.length;
    for (let i = 0; i < this.#size; i++) out.push(this.#ring[(start + i) % this.#ring.length]!);
    return out;
  }

  /**
   * Flows appended from the moment of this call on (subscribed at once, so
   * nothing between `recent()` and the first read is missed), until `signal`
   * aborts or `close()`.
   */
  live(opts: { signal?: AbortSignal } = {}): AsyncIterable<ObservedFlow> {
    const q = new AsyncQueue<ObservedFlow>();
    if (opts.signal?.aborted) {
      q.end();
      return q;
    }
    this.#subscribers.add(q);
    const onAbort = (): void => {
      this.#subscribers.delete(q);
      q.end();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const subscribers = this.#subscribers;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const f of q) yield f;
        } finally {
          opts.signal?.removeEventListener('abort', onAbort);
          subscribers.delete(q);
        }
      },
    };
  }

  /** Ends every live subscription. */
  close(): void {
    for (const q of this.#subscribers) q.end();
    this.#subscribers.clear();
  }
}
