/**
 * `npm run bench -- tracker [--json] [--rounds R]`: what the propagation
 * tracker costs the control plane's event loop per read and per event, at
 * 1,000 and 10,000 nodes (3 clusters, 100 retained revisions). Figures are
 * CPU time of this process (medians over R rounds), so they mean the same on
 * a busy machine:
 * - `skew_1k_ms`, `skew_10k_ms`: one `tracker.skew()` (what `meshctl skew`,
 *   `skew --watch` and `wait`'s final report read);
 * - `skew_rpc_1k_ms`, `skew_rpc_10k_ms`: the Skew RPC's work on the loop:
 *   `skew()` + the proto message + its encoding;
 * - `counts_10k_us`: the per-cluster counts a metrics collection reads;
 * - `ack_10k_us`: one ACK into the tracker; `revision_10k_ms`: one mesh
 *   revision affecting every node (the tracker's share of a commit).
 * Workload (seeded, no I/O): every revision affects every node (a change to
 * the mesh-wide ipcache); 1% of nodes stop ACKing 5 revisions before the end
 * (pending), 3 NACK, 1 reports a wrong digest, 2 are disconnected.
 */
import { loadavg } from 'node:os';
import { buildSkew } from '../controlplane/admin/index.js';
import { Tracker } from '../controlplane/telemetry/index.js';
import { SkewResponse } from '../proto/index.js';
import { numericOptions } from './lib/runner-options.js';
import { seededRandom } from './lib/workload.js';

const REVISIONS = 100;

interface FakeClock {
  t: number;
  now(): number;
}

interface Fleet {
  tracker: Tracker;
  clock: FakeClock;
  nodes: { cluster: string; node: string; key: string }[];
  revision: number;
}

const id = (n: { cluster: string; node: string; key: string }) => n;

/** A tracker holding `count` nodes after REVISIONS revisions of the workload above. */
function buildFleet(count: number, seed: number): Fleet {
  const random = seededRandom(seed);
  const clock: FakeClock = {
    t: 1_800_000_000_000,
    now() {
      return this.t;
    },
  };
  const tracker = new Tracker({ clock, revisions: REVISIONS });
  const nodes = Array.from({ length: count }, (_, i) => {
    const cluster = ['eu', 'us', 'ap'][i % 3]!;
    const node = `${cluster}-${Math.floor(i / 3) + 1}`;
    return { cluster, node, key: `${cluster}/${node}` };
  });
  const all = nodes.map(({ cluster, node }) => ({ cluster, node }));
  const keys = nodes.map((n) => n.key);
  const lagging = new Set(nodes.filter(() => random() < 0.01).map((n) => n.key));
  const nacking = new Set(keys.slice(count - 6, count - 3));
  const lying = keys[count - 3]!;
  const disconnected = new Set(keys.slice(count - 2));
  const fleet: Fleet = { tracker, clock, nodes, revision: 0 };
  for (let r = 1; r <= REVISIONS; r++) {
    clock.t += 100;
    commit(fleet, all, keys);
    if (r === 1) for (const n of nodes) if (!disconnected.has(n.key)) tracker.onStreamOpen(id(n));
    for (const n of nodes) {
      if (disconnected.has(n.key) || (lagging.has(n.key) && r > REVISIONS - 5)) continue;
      if (nacking.has(n.key) && r > 1) {
        tracker.onNack(id(n), {
          revision: r,
          nonce: String(r),
          message: 'endpoint table would hold 2 endpoints, capacity is 1',
          resourceNames: [],
          heldRevision: 1,
        });
        continue;
      }
      ack(fleet, n, n.key === lying && r === REVISIONS ? 'ffff' : 'd');
    }
  }
  return fleet;
}

function commit(f: Fleet, all: { cluster: string; node: string }[], affected: string[]): void {
  f.revision += 1;
  f.tracker.onRevision({ revision: f.revision, commitTime: f.clock.t, affected, removed: [] }, all);
}

function ack(f: Fleet, n: { cluster: string; node: string; key: string }, digest: string): void {
  f.tracker.onAck(id(n), {
    revision: f.revision,
    nonce: String(f.revision),
    applyDurationUs: 800,
    digest,
    expectedDigest: 'd',
    current: true,
    sentAt: f.clock.t + 5,
    receivedAt: f.clock.t + 40,
  });
}

/** CPU ms per call of `fn`, median over `rounds` rounds of `calls` calls. */
function cpuMsPerCall(rounds: number, calls: number, fn: () => unknown): number {
  for (let i = 0; i < Math.min(calls, 3); i++) fn();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < calls; i++) fn();
    const used = process.cpuUsage(start);
    samples.push((used.user + used.system) / 1000 / calls);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

function measure(count: number, rounds: number) {
  const f = buildFleet(count, 11);
  const calls = count >= 10_000 ? 5 : 50;
  const skew = cpuMsPerCall(rounds, calls, () => f.tracker.skew());
  const rpc = cpuMsPerCall(rounds, calls, () =>
    SkewResponse.encode(buildSkew(f.tracker, f.clock.now())).finish(),
  );
  const counts = cpuMsPerCall(rounds, 1000, () => f.tracker.clusterCounts());
  const pending = f.tracker.skew().pending;
  // One more revision affecting every node, then every connected node ACKs it.
  const all = f.nodes.map(({ cluster, node }) => ({ cluster, node }));
  const keys = f.nodes.map((n) => n.key);
  const revisionMs = cpuMsPerCall(rounds, 1, () => {
    f.clock.t += 100;
    commit(f, all, keys);
  });
  let i = 0;
  const ackMs = cpuMsPerCall(rounds, 1000, () => {
    ack(f, f.nodes[i++ % (f.nodes.length - 6)]!, 'd');
  });
  return { skew, rpc, counts, revisionMs, ackMs, pending, nodes: count };
}

export async function trackerBench(json: boolean, argv: readonly string[]): Promise<void> {
  const rounds = numericOptions(argv, ['rounds']).rounds ?? 7;
  const small = measure(1_000, rounds);
  const large = measure(10_000, rounds);
  const figures = {
    skew_1k_ms: round(small.skew, 3),
    skew_10k_ms: round(large.skew, 3),
    skew_rpc_1k_ms: round(small.rpc, 3),
    skew_rpc_10k_ms: round(large.rpc, 3),
    counts_10k_us: round(large.counts * 1000, 2),
    ack_10k_us: round(large.ackMs * 1000, 2),
    revision_10k_ms: round(large.revisionMs, 2),
    load_avg_1m: round(loadavg()[0]!, 2),
  };
  if (json) {
    process.stdout.write(`${JSON.stringify({ bench: 'tracker', figures })}\n`);
    return;
  }
  for (const m of [small, large])
    process.stdout.write(
      `${m.nodes} nodes (${m.pending} pending at the latest revision): skew() ${round(m.skew, 3)} ms, ` +
        `Skew RPC ${round(m.rpc, 3)} ms, counts ${round(m.counts * 1000, 2)} µs, ` +
        `one ACK ${round(m.ackMs * 1000, 2)} µs, one revision ${round(m.revisionMs, 2)} ms (CPU)\n`,
    );
  process.stdout.write(`load average ${figures.load_avg_1m}\n`);
  await Promise.resolve();
}
