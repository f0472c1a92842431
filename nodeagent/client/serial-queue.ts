/**
 * Runs async jobs one at a time in call order. The datapath allows one call
 * at a time; applies and verifications both go through this.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    // The chain must not reject, or the next job would see someone else's error.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
