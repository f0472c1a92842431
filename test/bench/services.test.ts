// Smoke test of the services benchmark at a tiny scale, so it cannot rot: the
// whole path runs (real etcd, NATS, control plane, the churn publisher
// process) and every figure is a well-formed number.
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  DEFAULT_SERVICES_SHAPE,
  generateServicesWorkload,
  runServicesBench,
  runServicesReplay,
} from '../../bench/index.js';
import { tempDir } from '../harness/index.js';

describe('services benchmark', () => {
  it('churns 10% of 20 services × 3 clusters × 10 endpoints, reports well-formed figures, and its recording replays', async () => {
    const dir = await tempDir('bench-services-');
    const record = join(dir.path, 'history.jsonl');
    // Removed at the end, also when the run fails.
    onTestFinished(() => dir.cleanup());
    const result = await runServicesBench({ services: 20, timeoutMs: 60_000, record });
    const f = result.figures;
    for (const key of [
      'import_p50_ms',
      'import_p99_ms',
      'initial_converge_ms',
      'churn_endpoints_per_s',
      'churn_change_sets_per_s',
      'services_update_p50_ms',
    ]) {
      expect(typeof f[key], key).toBe('number');
      expect(Number.isFinite(f[key]), key).toBe(true);
    }
    expect(f.churned_endpoints).toBe(60); // 10% of 600
    expect(f.imports).toBe(20);
    expect(f.complete_imports).toBe(20);
    expect(f.import_p50_ms).toBeGreaterThanOrEqual(0);
    expect(f.import_p99_ms).toBeGreaterThanOrEqual(f.import_p50_ms!);
    expect(f.initial_converge_ms).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify({ bench: 'services', figures: f }))).toEqual({
      bench: 'services',
      figures: f,
    });
    // The snapshot side replayed on what the run committed: the churn is measured.
    const replay = await runServicesReplay(record, 1);
    expect(replay.replay_revisions).toBeGreaterThan(0);
    expect(replay.replay_mesh_revisions).toBeGreaterThan(0);
    expect(replay.replay_update_cpu_ms).toBeGreaterThan(0);
  }, 120_000);

  it('generates the same workload from the same seed; churn keeps labels and changes name and IP', () => {
    const shape = { ...DEFAULT_SERVICES_SHAPE, services: 40, servicesPerRound: 15 };
    const w = generateServicesWorkload(shape);
    expect(generateServicesWorkload(shape)).toEqual(w);
    expect(w.pods).toBe(40 * 3 * 10);
    expect(w.rounds).toHaveLength(3);
    expect(w.rounds.every((r) => r.length === 3)).toBe(true);
    const pods = w.rounds.flat().flatMap((e) => e.upserts.filter((o) => o.kind === 'Pod'));
    const byName = new Map(pods.map((p) => [`${p.cluster}/${p.namespace}/${p.name}`, p]));
    expect(byName.size).toBe(w.pods);
    const endpoints = w.churn.flatMap((c) => c.endpoints);
    expect(endpoints).toHaveLength(120);
    expect(new Set(endpoints.map((e) => e.newIp)).size).toBe(120);
    for (const cs of w.churn) {
      expect(cs.event.deletes).toHaveLength(cs.event.upserts.length);
      cs.event.deletes.forEach((d, i) => {
        const old = byName.get(`${cs.event.cluster.name}/${d.namespace}/${d.name}`)!;
        const repl = cs.event.upserts[i]!;
        expect(repl.labels).toEqual(old.labels);
        expect(repl.name).not.toBe(old.name);
        expect(repl.kind === 'Pod' && repl.ips[0]).toBe(cs.endpoints[i]!.newIp);
        expect(old.kind === 'Pod' && old.ips[0]).toBe(cs.endpoints[i]!.oldIp);
      });
    }
  });
});
