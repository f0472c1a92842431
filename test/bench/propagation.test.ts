// Smoke test of the propagation benchmark at a tiny scale, so it cannot rot:
// the whole path runs (mesh CA and per-agent certificates, real etcd and
// NATS, the control plane and two agent workers in their own processes,
// every scenario and one search step) and every figure is a well-formed
// number. Slow (~40 s): it starts six processes and issues 30 certificates.
import { describe, expect, it } from 'vitest';
import {
  clusterSpecs,
  newPodChange,
  pctPolicyChange,
  podsOfNodes,
  propagationShape,
  runPropagation,
} from '../../bench/index.js';

describe('propagation benchmark', () => {
  it('measures commit → ACK for 20 mTLS agents in worker processes and searches one step upward', async () => {
    const result = await runPropagation({
      agents: 20,
      maxAgents: 30,
      searchStep: 10,
      agentsPerWorker: 10,
      reps: 3,
      warmup: 2,
      timeoutMs: 240_000,
    });
    const f = result.figures;
    for (const key of [
      'all_p50_ms',
      'all_p99_ms',
      'one_pct_p99_ms',
      'burst_converge_ms',
      'rss_per_agent_kib',
      'max_agents_p99_under_1s',
      'cert_issue_s',
      'tracker_cpu_ms_per_1000_acks',
    ]) {
      expect(typeof f[key], key).toBe('number');
      expect(Number.isFinite(f[key]), key).toBe(true);
    }
    expect(f.all_samples).toBe(3 * 20); // every agent ACKed every change
    expect(f.one_pct_nodes).toBe(1);
    expect(f.all_p99_ms).toBeGreaterThanOrEqual(f.all_p50_ms!);
    expect(f.burst_converge_ms).toBeGreaterThanOrEqual(0);
    // The last node's ACK is the slowest of the last revision's.
    expect(f.burst_ack_p50_ms).toBeLessThanOrEqual(f.burst_ack_p90_ms!);
    expect(f.burst_ack_p90_ms).toBeLessThanOrEqual(f.burst_converge_ms!);
    // Every node ACKed the burst at least once (its last revision); both sides spent CPU on it.
    expect(f.burst_acks_per_node).toBeGreaterThanOrEqual(1);
    expect(f.burst_cpu_controlplane_ms).toBeGreaterThan(0);
    expect(f.burst_cpu_agents_ms).toBeGreaterThan(0);
    // One control plane connection per agent (plus etcd, NATS, admin, files).
    expect(f.controlplane_fds).toBeGreaterThanOrEqual(20);
    expect([0, 20, 30]).toContain(f.max_agents_p99_under_1s);
    expect(JSON.parse(JSON.stringify({ bench: 'propagation', figures: f }))).toEqual({
      bench: 'propagation',
      figures: f,
    });
  }, 300_000);

  it('generates node lists, pods and changes deterministically; the 1% policy selects pods on pctNodes nodes', () => {
    const shape = propagationShape(1_000);
    expect(shape.pctNodes).toBe(10);
    const clusters = clusterSpecs(shape);
    expect(clusters.map((c) => c.nodes.length)).toEqual([334, 333, 333]);
    const initial = clusters.map((c, i) => podsOfNodes(shape, c, i));
    const pods = initial.flatMap((e) => e.upserts.filter((o) => o.kind === 'Pod'));
    expect(pods).toHaveLength(5_000);
    expect(new Set(pods.map((p) => p.kind === 'Pod' && p.ips[0])).size).toBe(5_000);
    const pct = pods.filter((p) => p.labels.tier === 'pct');
    expect(new Set(pct.map((p) => p.kind === 'Pod' && p.node)).size).toBe(10);
    expect(pctPolicyChange(clusters, 3)).toEqual(pctPolicyChange(clusters, 3));
    const a = newPodChange(shape, clusters, 7).upserts[0]!;
    expect(a.kind === 'Pod' && pods.some((p) => p.kind === 'Pod' && p.ips[0] === a.ips[0])).toBe(
      false,
    );
    // Growing the mesh keeps every existing node and adds pods only on new ones.
    const grown = clusterSpecs(propagationShape(2_000));
    expect(grown[0]!.nodes.slice(0, 334)).toEqual(clusters[0]!.nodes);
    const more = podsOfNodes(shape, grown[0]!, 0, 334).upserts;
    expect(more.every((o) => o.kind === 'Pod' && !clusters[0]!.nodes.includes(o.node))).toBe(true);
  });
});
