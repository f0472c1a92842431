// raceAbort: the promise's outcome or the abort's, and no listener left on the signal either way.
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { raceAbort } from '../../common/index.js';

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
