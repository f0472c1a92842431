/**
 * The propagation benchmark's scenarios, each against a settled mesh (every
 * node in-sync): publish, wait until the mesh has settled again, and read
 * commit → ACK receipt per node from the admin Status API.
 */
import { abortAfter, type ClusterSpec } from '../common/index.js';
import { ackLatencies, syncView } from './lib/ack-latency.js';
import type { BenchMesh } from './lib/propagation-mesh.js';
import { percentile } from './lib/stats.js';
import {
  newPodChange,
  pctPolicyChange,
  type PropagationShape,
} from './lib/propagation-workload.js';

export interface ScenarioContext {
  mesh: BenchMesh;
  shape: PropagationShape;
  clusters: ClusterSpec[];
  /** next unused index for newPodChange (every added pod is new) */
  nextPod: number;
  signal: AbortSignal;
  log: (line: string) => void;
}

/**
 * The first Status poll after a publish: the instrument reads once the change
 * has (most likely) gone out, not between its commit and its pushes, where a
 * Status of every node would take the control plane's CPU from the change.
 */
const POLL_AFTER_PUBLISH_MS = 500;

/** Publishes one change set and waits for a new mesh revision that every node is in-sync at. */
async function step(
  ctx: ScenarioContext,
  publish: () => Promise<void>,
  what: string,
): Promise<{ latencies: number[]; revision: number }> {
  const before = syncView(await ctx.mesh.status());
  await publish();
  const limit = abortAfter(60_000, ctx.signal);
  const s = await ctx.mesh
    .until((v) => v.revision > before.revision && v.behind.length === 0, what, limit.signal, {
      firstPollMs: POLL_AFTER_PUBLISH_MS,
    })
    .finally(limit.clear);
  return { latencies: ackLatencies(s).latencies, revision: s.revision };
}

/** (a): `reps` new pods, one at a time; every node must ACK each. Latencies pooled over all. */
export async function allNodesScenario(ctx: ScenarioContext, reps: number): Promise<number[]> {
  const all: number[] = [];
  const maxima: number[] = [];
  for (let r = 0; r < reps; r++) {
    const k = ctx.nextPod++;
    const { latencies, revision } = await step(
      ctx,
      () => ctx.mesh.publish(newPodChange(ctx.shape, ctx.clusters, k)),
      `new pod ${k} on every node`,
    );
    if (latencies.length !== ctx.shape.agents)
      throw new Error(
        `revision ${revision} (new pod ${k}) was ACKed by ${latencies.length} of ${ctx.shape.agents} nodes; every node should have received its ipcache shard`,
      );
    all.push(...latencies);
    maxima.push(Math.max(...latencies));
  }
  // One slow change sets a pooled p99 (it holds 5% of the ACKs of 20): shown, not averaged away.
  ctx.log(`${reps} changes on every node, the last ACK of each (ms): ${maxima.join(' ')}`);
  return all;
}

/**
 * (b): `reps` changes of a policy selecting endpoints on `shape.pctNodes`
 * nodes, the k-th (from `first`) allowing port 10,000 + k: the change with
 * k = 0 creates the policy, every later one changes it.
 */
export async function onePercentScenario(
  ctx: ScenarioContext,
  reps: number,
  first = 0,
): Promise<number[]> {
  const all: number[] = [];
  const maxima: number[] = [];
  for (let r = first; r < first + reps; r++) {
    const { latencies, revision } = await step(
      ctx,
      () => ctx.mesh.publish(pctPolicyChange(ctx.clusters, r)),
      `policy change ${r} on ${ctx.shape.pctNodes} nodes`,
    );
    if (latencies.length !== ctx.shape.pctNodes)
      throw new Error(
        `revision ${revision} (policy change ${r}) was ACKed by ${latencies.length} nodes; expected exactly the ${ctx.shape.pctNodes} nodes running selected endpoints`,
      );
    all.push(...latencies);
    maxima.push(Math.max(...latencies));
  }
  // As in (a): (b)'s p99 is its 5th-slowest ACK of ~450, so one slow change sets it.
  ctx.log(
    `${reps} changes on ${ctx.shape.pctNodes} nodes, the last ACK of each (ms): ${maxima.join(' ')}`,
  );
  return all;
}

/**
 * (c): `changes` new pods published evenly over `windowMs`; returns last
 * commit → last ACK (the last mesh revision's commit, the last node's ACK of
 * it), the median and 90th percentile of that revision's commit → ACK over
 * the nodes (a fleet-wide delay moves them with the last; a few slow nodes do
 * not), and how many etcd revisions the burst spanned (change sets may be
 * folded into one transaction; bookkeeping writes count too).
 */
export async function burstScenario(
  ctx: ScenarioContext,
  changes: number,
  windowMs: number,
): Promise<{
  convergeMs: number;
  p50Ms: number;
  p90Ms: number;
  etcdRevisions: number;
  publishMs: number;
}> {
  const before = syncView(await ctx.mesh.status());
  const first = ctx.nextPod;
  ctx.nextPod += changes;
  const start = performance.now();
  const acks: Promise<void>[] = [];
  for (let i = 0; i < changes; i++) {
    const wait = start + (i * windowMs) / changes - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    acks.push(ctx.mesh.publish(newPodChange(ctx.shape, ctx.clusters, first + i)));
  }
  await Promise.all(acks);
  const publishMs = performance.now() - start;
  const limit = abortAfter(120_000, ctx.signal);
  const s = await ctx.mesh
    .until(
      (v) => v.endpoints >= before.endpoints + changes && v.behind.length === 0,
      `${changes} new pods on every node`,
      limit.signal,
      { firstPollMs: POLL_AFTER_PUBLISH_MS },
    )
    .finally(limit.clear);
  const { latencies, lastAckAt } = ackLatencies(s);
  if (latencies.length !== ctx.shape.agents)
    throw new Error(
      `the burst's last revision ${s.revision} was ACKed by ${latencies.length} of ${ctx.shape.agents} nodes`,
    );
  return {
    convergeMs: lastAckAt - s.commitTimeUnixMs,
    p50Ms: percentile(latencies, 50),
    p90Ms: percentile(latencies, 90),
    etcdRevisions: s.revision - before.revision,
    publishMs,
  };
}
