/** A FIFO that tests await items from, with a timeout so a missing item fails fast instead of hanging. */
export class AsyncQueue<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(item);
    else this.#items.push(item);
  }

  get size(): number {
    return this.#items.length;
  }

  next(timeoutMs = 5000, what = 'item'): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      const waiter = (i: T): void => {
        clearTimeout(timer);
        resolve(i);
      };
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Resolves with nothing if no item arrives within `ms` (for "nothing was sent" checks). */
  async none(ms: number): Promise<T | undefined> {
    try {
      return await this.next(ms);
    } catch {
      return undefined;
    }
  }
}
