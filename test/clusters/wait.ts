/** Polls `check` until it stops throwing (returns its value) or the timeout passes (rethrows). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** Waits long enough for a debounced reload (and its publish) to have happened if it were coming. */
export function quietPeriod(ms = 600): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
