// policy-compile: full compile of 10k policies × 100k identities, the
// incremental cost of one new identity matched by 100 selectors, and of one
// policy changed among the 10k. The workload is generated from a fixed seed;
// its shape is stated in bench/RESULTS.md.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { PolicyObject } from '../common/index.js';
import type { EndpointInfo, IdentityInfo } from '../controlplane/policy/index.js';
import { PolicyEngine, parsePolicies, parsePolicy } from '../controlplane/policy/index.js';

const IDENTITIES = 100_000;
const POLICIES = 10_000;
const CLUSTERS = ['c1', 'c2'] as const;
const PER_CLUSTER = IDENTITIES / CLUSTERS.length;
const TEAMS = 1000; // per cluster: 50 identities per team
const HOT = 100; // selectors the incremental identity is matched by
const INCREMENTAL_RUNS = 300;
const UPDATE_RUNS = 300;
/**
 * Untimed runs first: the incremental paths are cold code right after the
 * full compile (interpreted, then optimized), and the targets are about a
 * control plane in steady state, not its first few calls.
 */
const WARMUP = 20;

/** mulberry32: small, seeded, good enough for workload generation. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function workload(seed: number) {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const identities: IdentityInfo[] = [];
  const endpoints: EndpointInfo[] = [];
  CLUSTERS.forEach((cluster, ci) => {
    for (let n = 0; n < PER_CLUSTER; n++) {
      const id = (((ci + 1) << 16) | (256 + n)) >>> 0;
      const ns = `ns-${n % 50}`;
      identities.push({
        id,
        cluster,
        labels: {
          'k8s:app': `app-${Math.floor(n / 2)}`,
          'k8s:team': `team-${n % TEAMS}`,
          'k8s:tier': pick(['web', 'api', 'db', 'batch']),
          'k8s:io.kubernetes.pod.namespace': ns,
          'k8s:io.cilium.k8s.policy.serviceaccount': 'default',
          'k8s:io.cilium.k8s.policy.cluster': cluster,
        },
      });
      endpoints.push({
        cluster,
        namespace: ns,
        name: `pod-${n}`,
        identity: id,
        ips: [`10.${ci + 1}.${n >> 8}.${n & 255}`],
        namedPorts: [],
      });
    }
  });
  const policies: PolicyObject[] = [];
  const peer = (cluster: string) => {
    const remote =
      rand() < 0.25
        ? { 'io.cilium.k8s.policy.cluster': pick(CLUSTERS.filter((c) => c !== cluster)) }
        : {};
    return { matchLabels: { team: `team-${Math.floor(rand() * TEAMS)}`, ...remote } };
  };
  const ports = () =>
    Array.from({ length: 1 + Math.floor(rand() * 2) }, () => ({
      port: String(1 + Math.floor(rand() * 65535)),
      protocol: 'TCP',
    }));
  const policyAt = (i: number): PolicyObject => {
    const cluster = pick(CLUSTERS);
    const hot = i >= POLICIES;
    const peers = hot
      ? [{ matchLabels: { [`hot-${i - POLICIES}`]: '1' } }]
      : Array.from({ length: 1 + Math.floor(rand() * 3) }, () => peer(cluster));
    return {
      kind: 'CiliumClusterwideNetworkPolicy',
      cluster,
      namespace: '',
      name: `p-${i}`,
      labels: {},
      spec: {
        endpointSelector: { matchLabels: { app: `app-${Math.floor(rand() * (PER_CLUSTER / 2))}` } },
        ingress: [{ fromEndpoints: peers, toPorts: [{ ports: ports() }] }],
      },
    };
  };
  for (let i = 0; i < POLICIES + HOT; i++) policies.push(policyAt(i));
  // A policy change: policy i drawn again (new subject, peers and ports), in its original cluster.
  const changed = (i: number): PolicyObject => ({ ...policyAt(i), cluster: policies[i]!.cluster });
  return { identities, endpoints, policies, changed, rand };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function policyCompileBench(json: boolean): Promise<void> {
  const { identities, endpoints, policies, changed, rand } = workload(20_250_601);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const parsed = parsePolicies(policies);
  if (parsed.errors.length > 0)
    throw new Error(`generator made invalid policies: ${parsed.errors[0]!.message}`);
  const engine = new PolicyEngine(parsed.units, { identities, endpoints });
  const fullS = (performance.now() - t0) / 1000;
  const entries = engine.entryCount;
  const endpointCount = endpoints.length;
  gc?.();
  const rssMib = process.memoryUsage().rss / 2 ** 20;
  const rssDeltaMib = (process.memoryUsage().rss - rssBefore) / 2 ** 20;

  // One new identity matched by the HOT selectors, added then removed again.
  const hotLabels: Record<string, string> = {
    'k8s:io.kubernetes.pod.namespace': 'ns-0',
    'k8s:io.cilium.k8s.policy.cluster': 'c1',
  };
  for (let h = 0; h < HOT; h++) hotLabels[`k8s:hot-${h}`] = '1';
  const times: number[] = [];
  let deltaEndpoints = 0;
  for (let r = 0; r < WARMUP + INCREMENTAL_RUNS; r++) {
    const id = ((1 << 16) | (256 + PER_CLUSTER + r)) >>> 0;
    const t = performance.now();
    const deltas = engine.upsertIdentity({ id, cluster: 'c1', labels: hotLabels });
    if (r >= WARMUP) times.push(performance.now() - t);
    deltaEndpoints = deltas.length;
    engine.removeIdentity(id);
  }
  times.sort((a, b) => a - b);

  // One policy among the 10k changed: parse + validate + upsertPolicy → deltas ready.
  const updates: number[] = [];
  let updateEndpoints = 0;
  for (let r = 0; r < WARMUP + UPDATE_RUNS; r++) {
    const next = changed(Math.floor(rand() * POLICIES));
    const t = performance.now();
    const units = parsePolicy(next);
    if (!units.ok) throw new Error(`generator made an invalid policy: ${units.errors[0]!.message}`);
    const deltas = engine.upsertPolicy(units.value);
    if (r < WARMUP) continue;
    updates.push(performance.now() - t);
    updateEndpoints += deltas.length;
  }
  updates.sort((a, b) => a - b);
  const figures = {
    full_10k_100k_s: Number(fullS.toFixed(2)),
    full_10k_100k_rss_mib: Math.round(rssMib),
    full_rss_delta_mib: Math.round(rssDeltaMib),
    entries,
    endpoints: endpointCount,
    selectors: engine.selectorCount,
    incremental_p50_ms: Number(percentile(times, 50).toFixed(3)),
    incremental_p99_ms: Number(percentile(times, 99).toFixed(3)),
    incremental_endpoints_changed: deltaEndpoints,
    policy_update_p50_ms: Number(percentile(updates, 50).toFixed(3)),
    policy_update_p99_ms: Number(percentile(updates, 99).toFixed(3)),
    policy_update_endpoints_changed_avg: Number((updateEndpoints / UPDATE_RUNS).toFixed(1)),
    // The machine is shared: latency percentiles mean little without the load they ran under.
    load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
  };
  process.stderr.write(
    `policy-compile: full compile ${fullS.toFixed(2)} s, RSS ${Math.round(rssMib)} MiB (+${Math.round(rssDeltaMib)} MiB), ${entries} entries over ${endpointCount} endpoints, ${engine.selectorCount} selectors\n` +
      `incremental (1 identity, ${HOT} selectors, ${deltaEndpoints} endpoints changed): p50 ${figures.incremental_p50_ms} ms, p99 ${figures.incremental_p99_ms} ms over ${INCREMENTAL_RUNS} runs after ${WARMUP} untimed\n` +
      `policy update (1 of ${POLICIES}, ${figures.policy_update_endpoints_changed_avg} endpoints changed on average): p50 ${figures.policy_update_p50_ms} ms, p99 ${figures.policy_update_p99_ms} ms over ${UPDATE_RUNS} runs after ${WARMUP} untimed\n`,
  );
  if (json) process.stdout.write(`${JSON.stringify({ bench: 'policy-compile', figures })}\n`);
  await Promise.resolve();
}
