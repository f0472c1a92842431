import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PushScheduler } from '../../controlplane/xds/index.js';

describe('PushScheduler', () => {
  beforeEach(() => vi.useFakeTimers());
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
});
