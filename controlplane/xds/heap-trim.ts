import { PerformanceObserver, constants } from 'node:perf_hooks';

/**
 * Returns freed heap memory to the operating system once connection churn
 * has settled. Every TLS handshake and first sync allocates tens of KiB for a
 * moment between the long-lived buffers of the connections around it; glibc
 * keeps those holes, so after a fleet (re)connects the control plane's RSS
 * stays ~30–40 KiB per agent above what it uses (bench/RESULTS.md). A
 * `malloc_trim(0)` (~1.5 ms at 300 agents) gives them back: once the streams
 * have stopped opening and closing for `settleMs`, and after every full
 * garbage collection in the `gcWindowMs` that follow, which is when the
 * wave's response buffers (JavaScript Buffers, freed by the collector) are
 * actually released. Without churn nothing is trimmed.
 *
 * A trim blocks the event loop — 10–45 ms at 1,000 agents, measured — and
 * what it returns while changes are being pushed is soon taken again, so a
 * trim waits until no revision and no ACK has come for `quietMs` (the
 * owner calls `busy()` on each): not in the middle of a burst or of its
 * last round, where it held every push and ACK back.
 * Timers, the clock and the GC signal are injected; the trim itself is a
 * function the owner supplies (glibcMallocTrim, or nothing on other C
 * libraries).
 */
export class HeapTrimmer {
  readonly #trim: () => void;
  readonly #settleMs: number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (t: unknown) => void;
  readonly #onMajorGc: (fn: () => void) => () => void;
  readonly #gcWindowMs: number;
  readonly #quietMs: number;
  readonly #now: () => number;
  #timer: unknown;
  #quietTimer: unknown;
  #lastBusy = -Infinity;
  #gcWindowTimer: unknown;
  #stopWatchingGc: (() => void) | undefined;
  #trims = 0;

  constructor(
    trim: () => void,
    opts: {
      /** quiet time after the last stream opened or closed (default 2 s) */
      settleMs?: number;
      /** how long after settling each full GC is followed by a trim (default 60 s) */
      gcWindowMs?: number;
      /** how long after the last `busy()` a trim waits (default 1 s) */
      quietMs?: number;
      now?: () => number;
      setTimer?: (fn: () => void, ms: number) => unknown;
      clearTimer?: (t: unknown) => void;
      /** calls `fn` after each full (mark-compact) collection until the returned function is called */
      onMajorGc?: (fn: () => void) => () => void;
    } = {},
  ) {
    this.#trim = trim;
    this.#settleMs = opts.settleMs ?? 2_000;
    this.#gcWindowMs = opts.gcWindowMs ?? 60_000;
    this.#quietMs = opts.quietMs ?? 1_000;
    this.#now = opts.now ?? (() => performance.now());
    this.#setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref();
        return t;
      });
    this.#clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
    this.#onMajorGc = opts.onMajorGc ?? watchMajorGc;
  }

  /** A stream opened or closed: trim once nothing has changed for `settleMs`, then after full GCs for a while. */
  churn(): void {
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#timer = this.#setTimer(() => {
      this.#timer = undefined;
      this.#whenQuiet();
      this.#stopWatchingGc ??= this.#onMajorGc(() => this.#whenQuiet());
      if (this.#gcWindowTimer !== undefined) this.#clearTimer(this.#gcWindowTimer);
      this.#gcWindowTimer = this.#setTimer(() => this.#stopGc(), this.#gcWindowMs);
    }, this.#settleMs);
  }

  /** Changes are being pushed: a trim due now waits until `quietMs` after the last call. */
  busy(): void {
    this.#lastBusy = this.#now();
  }

  /** trims done so far */
  get trims(): number {
    return this.#trims;
  }

  close(): void {
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#timer = undefined;
    if (this.#quietTimer !== undefined) this.#clearTimer(this.#quietTimer);
    this.#quietTimer = undefined;
    this.#stopGc();
  }

  /** Trims now if nothing was pushed for `quietMs`, else once that holds (one trim however many are due). */
  #whenQuiet(): void {
    if (this.#quietTimer !== undefined) return;
    const wait = this.#lastBusy + this.#quietMs - this.#now();
    if (wait <= 0) {
      this.#trims += 1;
      this.#trim();
      return;
    }
    this.#quietTimer = this.#setTimer(() => {
      this.#quietTimer = undefined;
      this.#whenQuiet();
    }, wait);
  }

  #stopGc(): void {
    if (this.#gcWindowTimer !== undefined) this.#clearTimer(this.#gcWindowTimer);
    this.#gcWindowTimer = undefined;
    this.#stopWatchingGc?.();
    this.#stopWatchingGc = undefined;
  }
}

/** Node's GC performance entries, full collections only. */
function watchMajorGc(fn: () => void): () => void {
  const observer = new PerformanceObserver((list) => {
    const major = list
      .getEntries()
      .some(
        (e) =>
          (e as { detail?: { kind?: number } }).detail?.kind ===
          constants.NODE_PERFORMANCE_GC_MAJOR,
      );
    if (major) fn();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}
