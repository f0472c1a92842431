/**
 * Coalesces bursts of revisions into one push per affected node: a push goes
 * out `debounceMs` after the last revision of a burst, but never later than
 * `maxDelayMs` after the first — so a lone change leaves within milliseconds
 * and a steady stream of changes cannot postpone pushes forever.
 *
 * A flush hands over at most `sliceSize` nodes at a time and yields to the
 * event loop between slices (setImmediate): the responses of one slice are
 * written to the sockets (Node's HTTP/2 writes at the end of the loop turn)
 * while the next is being built, so the first agents apply while the control
 * plane still pushes to the rest, and ACKs that arrive meanwhile are read.
 * A node added while a flush is under way goes out with it (once).
 */
export class PushScheduler {
  readonly #flush: (nodes: string[]) => void;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #sliceSize: number;
  readonly #now: () => number;
  /** insertion-ordered: nodes are flushed in the order they became dirty */
  readonly #dirty = new Set<string>();
  #firstAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #slicing: NodeJS.Immediate | undefined;

  constructor(
    flush: (nodes: string[]) => void,
    opts: { debounceMs?: number; maxDelayMs?: number; sliceSize?: number; now?: () => number } = {},
  ) {
    this.#flush = flush;
    this.#debounceMs = opts.debounceMs ?? 2;
    this.#maxDelayMs = opts.maxDelayMs ?? 25;
    this.#sliceSize = Math.max(1, opts.sliceSize ?? 64);
    this.#now = opts.now ?? (() => performance.now());
  }

  add(nodes: Iterable<string>): void {
    const before = this.#dirty.size;
    for (const n of nodes) this.#dirty.add(n);
    // A flush under way takes them with its next slices.
    if (this.#dirty.size === 0 || this.#slicing !== undefined) return;
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
    this.#slicing = undefined;
    const nodes: string[] = [];
    for (const n of this.#dirty) {
      nodes.push(n);
      if (nodes.length === this.#sliceSize) break;
    }
    for (const n of nodes) this.#dirty.delete(n);
    if (this.#dirty.size > 0) this.#slicing = setImmediate(() => this.#fire());
    this.#flush(nodes);
  }

  close(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#slicing);
    this.#slicing = undefined;
    this.#dirty.clear();
  }
}
