import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full garbage collection, without needing node --expose-gc on the command line. */
export function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** This process's memory after two full collections and a moment for what runs after a GC. */
export async function settledMemory(gc: () => void): Promise<NodeJS.MemoryUsage> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  // GC observers (the heap trim after connection churn) run on later turns of the event loop.
  await new Promise((r) => setTimeout(r, 250));
  return process.memoryUsage();
}
