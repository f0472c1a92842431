// Smoke test of the distribution-only benchmark at a tiny scale, so it cannot
// rot, and a check of what it exists to show: a burst of revisions reaches
// each agent coalesced. The 30 revisions are published in one event-loop
// turn (burstMs 0): spread over time, a fast agent's ACK can come back
// before the next revision, and one push per revision is then right (the
// test failed that way once on a loaded machine with 30 revisions in 150 ms).
// ~15 s: it issues certificates and starts an agent worker process.
import { describe, expect, it } from 'vitest';
import { runPropagationCpu } from '../../bench/index.js';

describe('propagation-cpu benchmark', () => {
  it('measures CPU per node and change for 6 agents, and coalesces 30 revisions published at once', async () => {
    const f = await runPropagationCpu({ agents: 6, changes: 3, burst: 30, burstMs: 0 });
    expect(f.agents).toBe(6);
    for (const key of [
      'changes_cpu_server_us_per_node',
      'changes_cpu_agents_us_per_node',
      'changes_p99_ms',
      'rss_per_agent_kib',
      'burst_converge_ms',
    ])
      expect(Number.isFinite(f[key]), key).toBe(true);
    expect(f.changes_p99_ms).toBeGreaterThanOrEqual(f.changes_p50_ms!);
    expect(f.burst_pushes_per_node).toBeGreaterThanOrEqual(1);
    // 30 revisions at once: the newest state in one push (two if a lone first change went ahead).
    expect(f.burst_pushes_per_node).toBeLessThanOrEqual(2);
  }, 120_000);
});
