import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HeapTrimmer, PushScheduler } from '../../controlplane/xds/index.js';

describe('PushScheduler', () => {
  beforeEach(() =>
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'],
    }),
  );
  afterEach(() => vi.useRealTimers());

  it('a lone change goes out after the debounce; a burst is one push per node', () => {
    const pushes: string[][] = [];
    const s = new PushScheduler((n) => pushes.push(n.sort()), {
      debounceMs: 2,
      maxDelayMs: 25,
      now: () => Date.now(),
    });
    s.add(['a']);
    vi.advanceTimersByTime(2);
    expect(pushes).toEqual([['a']]);
    s.add(['a', 'b']);
    vi.advanceTimersByTime(1);
    s.add(['b', 'c']);
    vi.advanceTimersByTime(2);
    expect(pushes).toEqual([['a'], ['a', 'b', 'c']]);
  });

  it('a steady stream cannot postpone a push beyond the maximum delay', () => {
    const pushes: number[] = [];
    const s = new PushScheduler(() => pushes.push(Date.now()), {
      debounceMs: 5,
      maxDelayMs: 20,
      now: () => Date.now(),
    });
    const start = Date.now();
    for (let i = 0; i < 10; i++) {
      s.add(['a']);
      vi.advanceTimersByTime(3);
    }
    expect(pushes[0]! - start).toBeLessThanOrEqual(20);
  });

  it('a large flush goes out in slices with the event loop free between them; nodes added meanwhile join it once', () => {
    const slices: string[][] = [];
    const s = new PushScheduler((n) => slices.push(n), {
      debounceMs: 2,
      maxDelayMs: 25,
      sliceSize: 3,
      now: () => Date.now(),
    });
    s.add(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    vi.advanceTimersByTime(2);
    // The first slice only: the rest waits for the next turn of the event loop.
    expect(slices).toEqual([['a', 'b', 'c']]);
    s.add(['e', 'h']); // e is still queued: sent once, h after it
    vi.runOnlyPendingTimers();
    vi.runOnlyPendingTimers();
    expect(slices).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
      ['g', 'h'],
    ]);
    // Idle again: the next change waits for the debounce as before.
    s.add(['a']);
    expect(slices).toHaveLength(3);
    vi.advanceTimersByTime(2);
    expect(slices.at(-1)).toEqual(['a']);
  });

  it('close stops a flush between slices', () => {
    const slices: string[][] = [];
    const s = new PushScheduler((n) => slices.push(n), { sliceSize: 1, now: () => Date.now() });
    s.add(['a', 'b']);
    vi.advanceTimersByTime(2);
    s.close();
    vi.runAllTimers();
    expect(slices).toEqual([['a']]);
  });
});

describe('HeapTrimmer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A trimmer on fake timers (settle 2 s, GC window 60 s, quiet 1 s) whose trims and GC signal the test sees. */
  function trimmer(): { t: HeapTrimmer; trims: () => number; gc: () => (() => void) | undefined } {
    let trims = 0;
    let gc: (() => void) | undefined;
    const t = new HeapTrimmer(() => void (trims += 1), {
      settleMs: 2_000,
      gcWindowMs: 60_000,
      quietMs: 1_000,
      now: () => Date.now(),
      onMajorGc: (fn) => {
        gc = fn;
        return () => (gc = undefined);
      },
    });
    return { t, trims: () => trims, gc: () => gc };
  }

  it('trims once streams stop opening and closing for the settle time, then after each full GC for a while', () => {
    const { t, trims, gc } = trimmer();
    expect(gc()).toBeUndefined(); // no churn, no watching
    for (let i = 0; i < 10; i++) {
      t.churn();
      vi.advanceTimersByTime(500); // a connect wave: never quiet for 2 s
    }
    expect(trims()).toBe(0);
    vi.advanceTimersByTime(1_500);
    expect(trims()).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(trims()).toBe(1); // nothing more without churn or GC
    gc()!();
    gc()!();
    expect(trims()).toBe(3);
    vi.advanceTimersByTime(50_000); // the window ends: GCs no longer trim
    expect(gc()).toBeUndefined();
    t.churn();
    t.close();
    vi.advanceTimersByTime(5_000);
    expect(t.trims).toBe(3);
    expect(gc()).toBeUndefined();
  });

  it('holds a trim that falls due while revisions are being pushed until they stop for the quiet time, then trims once', () => {
    const { t, trims, gc } = trimmer();
    t.churn();
    // A revision every 200 ms for 3 s: the settle time passes, and a full GC comes, mid-burst.
    for (let ms = 0; ms < 3_000; ms += 200) {
      t.busy();
      if (ms === 2_600) gc()!();
      vi.advanceTimersByTime(200);
    }
    expect(trims()).toBe(0);
    vi.advanceTimersByTime(799); // the last revision came at 2.8 s
    expect(trims()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(trims()).toBe(1); // the settle trim and the GC's: one trim
    gc()!(); // quiet now: at once
    expect(trims()).toBe(2);
    t.close();
  });
});
