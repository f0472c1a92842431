/**
 * A push-to-pull bridge: producers `push`, one consumer iterates. Ending with
 * an error makes the iterator throw it (a stream error is never swallowed).
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiter: ((r: IteratorResult<T>) => void) | undefined;
  #failWaiter: ((err: unknown) => void) | undefined;
  #done = false;
  #error: Error | undefined;

  push(item: T): void {
    if (this.#done) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      this.#failWaiter = undefined;
      w({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  end(error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    if (this.#waiter) {
      const w = this.#waiter;
      const f = this.#failWaiter;
      this.#waiter = undefined;
      this.#failWaiter = undefined;
      if (error !== undefined) f?.(error);
      else w({ value: undefined, done: true });
    }
  }

  /** Up to `max` items that have already arrived, without waiting. */
  take(max: number): T[] {
    return this.#items.splice(0, Math.max(0, max));
  }

  get size(): number {
    return this.#items.length;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.#done) {
          return this.#error !== undefined
            ? Promise.reject(this.#error)
            : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          this.#waiter = resolve;
          this.#failWaiter = reject;
        });
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
