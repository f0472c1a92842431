// Smoke test of the transport-floor benchmark at a tiny scale, so it cannot rot.
// ~10 s: it issues certificates and starts a worker process.
import { describe, expect, it } from 'vitest';
import { runPropagationFloor } from '../../bench/index.js';

describe('propagation-floor benchmark', () => {
  it('greets 8 connections (first message in parts), runs rounds, and reports memory, latency and CPU', async () => {
    const f = await runPropagationFloor({
      connections: 8,
      perWorker: 5,
      firstBytes: 50_000,
      firstPartBytes: 16_384,
      rounds: 3,
      sliceSize: 3,
    });
    expect(f.connections).toBe(8);
    expect(f.first_bytes).toBe(50_000);
    for (const key of [
      'rss_per_conn_kib',
      'heap_per_conn_kib',
      'round_p50_ms',
      'round_p99_ms',
      'cpu_server_us_per_conn',
      'cpu_clients_us_per_conn',
    ])
      expect(Number.isFinite(f[key]), key).toBe(true);
    expect(f.round_p99_ms).toBeGreaterThanOrEqual(f.round_p50_ms!);
    expect(f.cpu_server_us_per_conn).toBeGreaterThan(0);
  }, 120_000);
});
