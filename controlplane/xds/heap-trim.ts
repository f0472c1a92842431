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
 * Timers and the GC signal are injected; the trim itself is a function the
 * owner supplies (glibcMallocTrim, or nothing on other C libraries).
 */
export class HeapTrimmer {
  readonly #trim: () => void;
  readonly #settleMs: number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (t: unknown) => void;
  readonly #onMajorGc: (fn: () => void) => () => void;
  readonly #gcWindowMs: number;
  #timer: unknown;
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
      setTimer?: (fn: () => void, ms: number) => unknown;
      clearTimer?: (t: unknown) => void;
      /** calls `fn` after each full (mark-compact) collection until the returned function is called */
      onMajorGc?: (fn: () => void) => () => void;
    } = {},
  ) {
    this.#trim = trim;
    this.#settleMs = opts.settleMs ?? 2_000;
    this.#gcWindowMs = opts.gcWindowMs ?? 60_000;
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
      this.#run();
      this.#stopWatchingGc ??= this.#onMajorGc(() => this.#run());
      if (this.#gcWindowTimer !== undefined) this.#clearTimer(this.#gcWindowTimer);
      this.#gcWindowTimer = this.#setTimer(() => this.#stopGc(), this.#gcWindowMs);
    }, this.#settleMs);
  }

  /** trims done so far */
  get trims(): number {
    return this.#trims;
  }

  close(): void {
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#timer = undefined;
    this.#stopGc();
  }

  #run(): void {
    this.#trims += 1;
    this.#trim();
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
