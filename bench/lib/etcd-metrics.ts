/**
 * etcd's Prometheus metrics, scraped from `/metrics` on its client URL.
 * `grpc_server_handled_total` counts every completed gRPC call by method:
 * unary KV calls (Range, Txn, Put, ...) when they return, streams (Watch,
 * LeaseKeepAlive) only when they end. Scraping is plain HTTP, not gRPC, so it
 * does not count itself.
 */
export type EtcdRpcCounts = ReadonlyMap<string, number>;

const HANDLED = /^grpc_server_handled_total\{([^}]*)\}\s+([0-9.eE+-]+)$/;

export function parseHandledTotals(text: string): EtcdRpcCounts {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = HANDLED.exec(line);
    if (!m) continue;
    const method = /grpc_method="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    counts.set(method, (counts.get(method) ?? 0) + Number(m[2]));
  }
  return counts;
}

/** after − before per method (methods with no calls in between are left out). */
export function rpcDelta(before: EtcdRpcCounts, after: EtcdRpcCounts): Map<string, number> {
  const out = new Map<string, number>();
  for (const [method, n] of after) {
    const d = n - (before.get(method) ?? 0);
    if (d > 0) out.set(method, d);
  }
  return out;
}

export function total(counts: EtcdRpcCounts): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}

/** Sum of every sample of one metric (all label sets), e.g. `etcd_disk_wal_fsync_duration_seconds_sum`. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(rest.slice(rest.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface EtcdSample {
  rpcs: EtcdRpcCounts;
  /** WAL fsyncs: one per raft batch that reached disk */
  walFsyncs: number;
  walFsyncSeconds: number;
  backendCommits: number;
  backendCommitSeconds: number;
}

/** The counters the benchmarks compare before and after a run. */
export async function scrapeEtcd(endpoint: string, signal?: AbortSignal): Promise<EtcdSample> {
  const res = await fetch(`${endpoint}/metrics`, signal ? { signal } : {});
  if (!res.ok) throw new Error(`etcd /metrics answered ${res.status}`);
  const text = await res.text();
  return {
    rpcs: parseHandledTotals(text),
    walFsyncs: metricSum(text, 'etcd_disk_wal_fsync_duration_seconds_count'),
    walFsyncSeconds: metricSum(text, 'etcd_disk_wal_fsync_duration_seconds_sum'),
    backendCommits: metricSum(text, 'etcd_disk_backend_commit_duration_seconds_count'),
    backendCommitSeconds: metricSum(text, 'etcd_disk_backend_commit_duration_seconds_sum'),
  };
}
