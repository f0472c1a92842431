export interface BackoffOptions {
  /** first delay; default 100 ms */
  initialMs?: number;
  /** ceiling; default 5 s */
  maxMs?: number;
  /** growth per attempt; default 2 */
  multiplier?: number;
  /** +/- fraction of each delay drawn at random, so agents do not reconnect in lockstep; default 0.2 */
  jitter?: number;
}

/** Exponential backoff with jitter. `random` is injected so tests are deterministic. */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #multiplier: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}, random: () => number = Math.random) {
    this.#initial = opts.initialMs ?? 100;
    this.#max = opts.maxMs ?? 5000;
    this.#multiplier = opts.multiplier ?? 2;
    this.#jitter = opts.jitter ?? 0.2;
    this.#random = random;
  }

  /** The delay before the next attempt. */
  next(): number {
    const base = Math.min(this.#max, this.#initial * this.#multiplier ** this.#attempt);
    this.#attempt += 1;
    const factor = 1 - this.#jitter + 2 * this.#jitter * this.#random();
    return Math.max(0, Math.round(Math.min(this.#max, base * factor)));
  }

  /** After a stream made progress: the next failure starts from the initial delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
