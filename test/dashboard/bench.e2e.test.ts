// Keeps `npm run bench -- dashboard` from rotting: a short run on a small
// fleet measures a payload and render times in chromium (no figures asserted
// beyond their presence: speed belongs to the benchmark itself).
import { describe, expect, it } from 'vitest';
import { runDashboardBench } from '../../bench/index.js';

describe('dashboard benchmark', () => {
  it('runs on a small fleet and reports every figure', async () => {
    const { figures, shape } = await runDashboardBench({
      fleet: { nodes: 30, affectedPerChange: 30, nacking: 1, disconnected: 1 },
      rate: 5,
      seconds: 2,
      warmupSeconds: 1,
    });
    expect(shape.nodes).toBe(30);
    for (const key of [
      'update_bytes_per_s',
      'updates_per_s',
      'state_bytes',
      'render_p50_ms',
      'render_p99_ms',
      'page_cpu_per_update_ms',
    ])
      expect(Number.isFinite(figures[key]), key).toBe(true);
    expect(figures.update_bytes_per_s).toBeGreaterThan(0);
    expect(figures.renders).toBeGreaterThan(0);
  });
});
