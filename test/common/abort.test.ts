// raceAbort: the promise's outcome or the abort's, and no listener left on the signal either way.
// abortAfter: a timeout that fires even when the garbage collector runs before it.
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortAfter, raceAbort, sleep } from '../../common/index.js';
import { underGc } from '../harness/index.js';

describe('raceAbort', () => {
  it('settles as the promise does and removes its listener', async () => {
    const signal = new AbortController().signal;
    for (let i = 0; i < 20; i++) {
      expect(await raceAbort(Promise.resolve(i), signal, () => -1)).toBe(i);
    }
    await expect(raceAbort(Promise.reject(new Error('no')), signal, () => -1)).rejects.toThrow(
      'no',
    );
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it("settles with onAbort's value or error when the signal aborts first", async () => {
    const c = new AbortController();
    const never = new Promise<number>(() => undefined);
    const value = raceAbort(never, c.signal, () => -1);
    const error = raceAbort(never, c.signal, () => {
      throw new Error('stopped');
    });
    c.abort();
    expect(await value).toBe(-1);
    await expect(error).rejects.toThrow('stopped');
    // Already aborted: onAbort at once.
    expect(await raceAbort(never, c.signal, () => -2)).toBe(-2);
    expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
  });
});

describe('abortAfter', () => {
  // AbortSignal.any([AbortSignal.timeout(ms)]) never aborts once the timeout
  // signal is collected (Node 20, nodejs/node#57736): this is what it replaces.
  it('aborts with a TimeoutError after its time, however often the collector runs', async () => {
    const { signal } = abortAfter(100, new AbortController().signal);
    await underGc(sleep(400));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).name).toBe('TimeoutError');
  });

  it("aborts with the first other signal's reason, and not at all once cleared", async () => {
    const c = new AbortController();
    const a = abortAfter(60_000, undefined, c.signal);
    c.abort(new Error('caller gone'));
    expect((a.signal.reason as Error).message).toBe('caller gone');
    const cleared = abortAfter(50);
    cleared.clear();
    await sleep(150);
    expect(cleared.signal.aborted).toBe(false);
  });
});
