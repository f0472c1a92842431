/**
 * Coalesces bursts of revisions into one push per affected node: a push goes
 * out `debounceMs` after the last revision of a burst, but never later than
 * `maxDelayMs` after the first — so a lone change leaves within milliseconds
 * and a steady stream of changes cannot postpone pushes forever.
 */
export class PushScheduler {
  readonly #flush: (nodes: string[]) => void;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #now: () => number;
  readonly #dirty = new Set<string>();
  #firstAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    flush: (nodes: string[]) => void,
    opts: { debounceMs?: number; maxDelayMs?: number; now?: () => number } = {},
  ) {
    this.#flush = flush;
    this.#debounceMs = opts.debounceMs ?? 2;
    this.#maxDelayMs = opts.maxDelayMs ?? 25;
    this.#now = opts.now ?? (() => performance.now());
  }

  add(nodes: Iterable<string>): void {
    const before = this.#dirty.size;
    for (const n of nodes) this.#dirty.add(n);
    if (this.#dirty.size === 0) return;
    if (before === 0) this.#firstAt = this.#now();
    clearTimeout(this.#timer);
    const wait = Math.min(
      this.#debounceMs,
      Math.max(0, this.#firstAt + this.#maxDelayMs - this.#now()),
    );
    this.#timer = setTimeout(() => this.#fire(), wait);
  }

  #fire(): void {
    this.#timer = undefined;
    const nodes = [...this.#dirty];
    this.#dirty.clear();
    this.#flush(nodes);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#dirty.clear();
  }
}
