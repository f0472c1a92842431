// Smoke test of the identity-churn benchmark at a tiny scale, so it cannot rot:
// the whole path runs (real etcd, NATS, control plane, 3 source processes) and
// every figure is a well-formed number.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SHAPE,
  generateWorkload,
  parseHandledTotals,
  parseNanoTimestamp,
  percentile,
  rpcDelta,
  runIdentityChurn,
  total,
} from '../../bench/index.js';

const CONTRACT_KEYS = [
  'endpoints_per_s',
  'visible_p50_ms',
  'visible_p99_ms',
  'etcd_requests_per_endpoint',
] as const;

describe('identity-churn benchmark', () => {
  it('runs 60 pods through 3 cluster sources and reports well-formed figures', async () => {
    const result = await runIdentityChurn({ pods: 60, timeoutMs: 60_000 });
    const f = result.figures;
    for (const key of [...CONTRACT_KEYS, 'identities_allocated', 'pods', 'change_sets']) {
      expect(typeof f[key], key).toBe('number');
      expect(Number.isFinite(f[key]), key).toBe(true);
    }
    expect(f.pods).toBe(60);
    expect(f.endpoints_per_s).toBeGreaterThan(0);
    expect(f.visible_p50_ms).toBeGreaterThanOrEqual(0);
    expect(f.visible_p99_ms).toBeGreaterThanOrEqual(f.visible_p50_ms!);
    expect(f.etcd_requests_per_endpoint).toBeGreaterThan(0);
    // One identity per Deployment: pod-template-hash is excluded from identity labels.
    expect(f.identities_allocated).toBe(result.shape.deployments);
    expect(JSON.parse(JSON.stringify({ bench: 'identity-churn', figures: f }))).toEqual({
      bench: 'identity-churn',
      figures: f,
    });
  }, 120_000);
});

describe('benchmark helpers', () => {
  it('generates the same workload from the same seed, in files of at most 50 pods', () => {
    const shape = { ...DEFAULT_SHAPE, pods: 500 };
    const a = generateWorkload(shape);
    expect(generateWorkload(shape)).toEqual(a);
    const pods = a.files.flatMap((f) => f.pods);
    expect(pods).toHaveLength(500);
    expect(new Set(pods.map((p) => p.ip)).size).toBe(500);
    expect(Math.max(...a.files.map((f) => f.pods.length))).toBeLessThanOrEqual(50);
    expect(new Set(pods.map((p) => p.deployment)).size).toBe(a.deployments);
  });

  it('sums etcd gRPC calls per method from Prometheus text', () => {
    const text = (range: number, txn: number): string =>
      [
        '# TYPE grpc_server_handled_total counter',
        `grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} ${range}`,
        `grpc_server_handled_total{grpc_code="Unavailable",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1`,
        `grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} ${txn}`,
        'grpc_server_started_total{grpc_method="Range"} 99',
      ].join('\n');
    const d = rpcDelta(parseHandledTotals(text(3, 1)), parseHandledTotals(text(10, 4)));
    expect(Object.fromEntries(d)).toEqual({ Range: 7, Txn: 3 });
    expect(total(d)).toBe(10);
  });

  it('parses nanosecond timestamps and takes nearest-rank percentiles', () => {
    expect(parseNanoTimestamp('2024-06-01T10:00:00.123456789Z')).toBeCloseTo(
      Date.parse('2024-06-01T10:00:00Z') + 123.456789,
      6,
    );
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });
});
