import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full collection
 * kept before it starts the next one: 100%, a limit of twice the live heap
 * (the Go runtime's default, GOGC=100). Left to itself, V8 derives the factor
 * from its measured collection and allocation speeds. For the control plane
 * it chose ~1.1–1.3: a heap of ~65 MB at 1,000 agents, collected fast,
 * growing ~1.3 MB per change. That is a mark-compact every 8–11 changes, and
 * on a machine whose cores the agents share, the change during one took
 * ~100 ms longer (bench/RESULTS.md, 2026-12-08). Memory for latency: the
 * heap may hold up to twice what is live between collections.
 */
export const HEAP_GROWING_PERCENT = 100;

/** Process-wide; V8 reads the flag each time it sets the next limit. */
export function setHeapGrowth(percent: number = HEAP_GROWING_PERCENT): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
