// Smoke test of the agent-revision benchmark at a tiny scale, so it cannot rot.
import { describe, expect, it } from 'vitest';
import { runAgentRevision } from '../../bench/index.js';

describe('agent-revision benchmark', () => {
  it('applies one-shard revisions on every agent and reports CPU and allocation per agent and change', async () => {
    const f = await runAgentRevision({ agents: 3, changes: 20, shards: 16, entries: 4 });
    expect(f).toMatchObject({ agents: 3, changes: 20, shards: 16, entries: 4 });
    expect(f.cpu_us).toBeGreaterThan(0);
    // Decoding a response and its shard cannot be free: the sampler must have seen it.
    expect(f.alloc_bytes).toBeGreaterThan(100);
  }, 60_000);

  it('replaces several shards per revision when asked (a burst), which allocates more than one', async () => {
    const one = await runAgentRevision({ agents: 3, changes: 20, shards: 16, entries: 4 });
    const eight = await runAgentRevision({
      agents: 3,
      changes: 20,
      shards: 16,
      entries: 4,
      changed: 8,
    });
    expect(eight.changed).toBe(8);
    expect(eight.alloc_bytes).toBeGreaterThan(2 * one.alloc_bytes!);
    await expect(
      runAgentRevision({ agents: 1, changes: 1, shards: 4, entries: 4, changed: 5 }),
    ).rejects.toThrow(/--changed/);
  }, 60_000);

  it('reports the heap each agent holds: at least a few bytes per prefix it holds', async () => {
    // 1,024 shards × 5 prefixes: each agent's store and emulated maps hold 5,120+ prefixes,
    // far above what a full GC leaves of the process's own noise.
    const f = await runAgentRevision({ agents: 3, changes: 5, shards: 1024, entries: 5 });
    expect(f.held_heap_bytes).toBeGreaterThan(5_120 * 10);
    expect(f.held_heap_bytes).toBeLessThan(5_120 * 1_000);
  }, 60_000);

  it('refuses a shard size it cannot grow', async () => {
    await expect(
      runAgentRevision({ agents: 1, changes: 1, shards: 1, entries: 255 }),
    ).rejects.toThrow(/--entries/);
  });
});
