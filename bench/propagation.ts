/**
 * `npm run bench -- propagation [--json] [--agents N] [--max-agents M] [--pods-per-node P]
 *    [--agents-per-worker W] [--reps R] [--warmup C] [--profile DIR] [--timeout S]`
 *
 * Snapshot distribution to node agents, end to end and in separate
 * processes: real etcd and NATS (launcher), the control plane in a child
 * process (mTLS), N node agents (NodeAgent + EmulatedDatapath) in worker
 * processes of W agents each — every agent with its own gRPC connection and
 * its own certificate from the mesh CA. Changes enter as a cluster source
 * publishes them (JetStream `meshplane.events.<cluster>`); latencies are
 * read from the admin Status API: commit of the mesh revision → receipt of
 * each node's ACK, both on the control plane's clock. DESIGN.md
 * "Benchmarks" defines the keys; bench/RESULTS.md states the workload.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { abortAfter, raceAbort } from '../common/index.js';
import { writeMeshTls, type TlsFiles } from '../common/tls/index.js';
import { startInfra } from '../launcher/index.js';
import {
  issueAgentCertificates,
  startWorkers,
  type AgentId,
  type Worker,
} from './lib/agent-fleet.js';
import { spawnTsx, type Child } from './lib/child.js';
import { latencySplit } from './lib/ack-latency.js';
import { processCpuSeconds } from './lib/proc-cpu.js';
import { BenchMesh } from './lib/propagation-mesh.js';
import {
  clusterSpecs,
  podsOfNodes,
  propagationShape,
  type PropagationShape,
} from './lib/propagation-workload.js';
import { interruptSignal } from './lib/runner-options.js';
import { percentile, round } from './lib/stats.js';
import {
  allNodesScenario,
  burstScenario,
  onePercentScenario,
  type ScenarioContext,
} from './propagation-scenarios.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CP_SCRIPT = fileURLToPath(new URL('./lib/controlplane-process.ts', import.meta.url));

export interface PropagationOptions {
  /** node agents (default 1,000, in 3 clusters) */
  agents?: number;
  /** search upward for the largest N with (a) p99 < 1 s up to this many agents; ≤ agents: no search (default 4 × agents) */
  maxAgents?: number;
  /** agents added per search step (default 1,000) */
  searchStep?: number;
  podsPerNode?: number;
  agentsPerWorker?: number;
  /** changes measured in (a) and (b) (default 20 and 30) */
  reps?: number;
  /** all-node changes before (a) and before each search step is measured (default WARMUP_CHANGES) */
  warmup?: number;
  /** write the control plane's CPU and heap profiles (node --cpu-prof/--heap-prof) here, the agent workers' CPU profiles under agents/ */
  profileDir?: string;
  timeoutMs?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PropagationResult {
  figures: Record<string, number>;
  shape: PropagationShape;
  /** why the search for max agents stopped */
  searchStop: string;
}

/**
 * All-node changes before measuring: the agents' and the control plane's
 * one-shard path is JIT-compiled over the first few changes after the fleet
 * connected (a full sync exercises other code). At 1,000 agents the first
 * changes' last ACKs came at 292, 204, 201, 155 and 179 ms, the following
 * fifteen at 115–233 ms (2026-12-07, bench/RESULTS.md); with two warm-up
 * changes the first measured change alone set (a)'s p99.
 */
export const WARMUP_CHANGES = 10;

export async function runPropagation(opts: PropagationOptions = {}): Promise<PropagationResult> {
  const log = opts.log ?? (() => undefined);
  let shape = propagationShape(opts.agents ?? 1_000, opts.podsPerNode ?? 5);
  const firstShape = shape;
  const perWorker = opts.agentsPerWorker ?? 250;
  const reps = opts.reps ?? 20;
  const maxAgents = opts.maxAgents ?? 4 * shape.agents;
  const { signal } = abortAfter(opts.timeoutMs ?? 1_800_000, opts.signal);
  const figures: Record<string, number> = {};
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const root = await mkdtemp(join(tmpdir(), 'meshplane-bench-propagation-'));
    cleanups.push(() => rm(root, { recursive: true, force: true, maxRetries: 3 }));

    // Certificates, as `meshctl up` issues them: a mesh CA, the control
    // plane's, an admin one and one per agent (openssl CLI, in parallel).
    let clusters = clusterSpecs(shape);
    const ids = (cs: typeof clusters): AgentId[] =>
      cs.flatMap((c) => c.nodes.map((node) => ({ cluster: c.name, node })));
    const tlsDir = join(root, 'tls');
    const concurrency = 8;
    let t = performance.now();
    const tls = await writeMeshTls(
      tlsDir,
      { agents: ids(clusters), adminUser: 'bench', days: 1 },
      { signal, concurrency },
    );
    figures.cert_issue_s = round((performance.now() - t) / 1000, 2);
    log(
      `issued ${shape.agents + 2} certificates in ${figures.cert_issue_s} s (openssl, ${concurrency} at a time)`,
    );
    const agentFiles = new Map<string, TlsFiles>(tls.agents);

    log('starting etcd and NATS');
    const infra = await startInfra({ signal, startTimeoutMs: 45_000 });
    cleanups.push(() => infra.stop());

    const cp = await startControlPlane(infra, tls.controlPlane, opts.profileDir, log);
    cleanups.push(() => cp.child.stop(10_000));
    const mesh = await BenchMesh.connect(cp.address, infra.nats.url, tls.admin);
    cleanups.push(() => mesh.close());
    for (const c of clusters) await mesh.join(c.name, c.id);

    const pods = shape.agents * shape.podsPerNode;
    log(`initial state: ${shape.agents} nodes in ${clusters.length} clusters, ${pods} pods`);
    for (const [i, c] of clusters.entries()) await mesh.publish(podsOfNodes(shape, c, i));
    await mesh.until(
      (v) => v.endpoints === pods && v.nodes === shape.agents,
      'initial state',
      signal,
    );

    const idle = await cp.memory();
    log(`control plane with 0 agents: RSS ${mib(idle.rss)} MiB, heap ${mib(idle.heapUsed)} MiB`);

    const workers: Worker[] = [];
    cleanups.push(() => Promise.all(workers.map((w) => w.child.stop())));
    const connect = async (agents: AgentId[]): Promise<void> => {
      t = performance.now();
      const started = await startWorkers(
        root,
        cp.address,
        tls.ca.cert,
        agents.map((a) => ({ ...a, files: agentFiles.get(`${a.cluster}/${a.node}`)! })),
        {
          perWorker,
          log,
          first: workers.length,
          ...(opts.profileDir
            ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', join(opts.profileDir, 'agents')] }
            : {}),
        },
      );
      workers.push(...started);
      await raceAbort(Promise.all(started.map((w) => w.ready)), signal, () => {
        throw new Error('timed out waiting for the agents', { cause: signal.reason });
      });
      await mesh.until(
        (v) => v.behind.length === 0 && v.nodes === shape.agents,
        'every node in-sync',
        signal,
      );
      log(
        `${shape.agents} agents connected and in-sync after ${round((performance.now() - t) / 1000, 1)} s`,
      );
    };
    await connect(ids(clusters));

    // Let connection setup garbage settle, then measure.
    await new Promise((r) => setTimeout(r, 3_000));
    const synced = await cp.memory();
    figures.rss_per_agent_kib = round((synced.rss - idle.rss) / 1024 / shape.agents, 1);
    figures.heap_per_agent_kib = round((synced.heapUsed - idle.heapUsed) / 1024 / shape.agents, 1);
    // RSS = the V8 heap's committed pages (heapTotal: live objects plus room
    // V8 keeps) + native memory (TLS, HTTP/2, malloc): which one grew.
    const native = (m: { rss: number; heapTotal: number }): number => m.rss - m.heapTotal;
    figures.heap_committed_per_agent_kib = round(
      (synced.heapTotal - idle.heapTotal) / 1024 / shape.agents,
      1,
    );
    figures.native_per_agent_kib = round((native(synced) - native(idle)) / 1024 / shape.agents, 1);
    figures.controlplane_fds = synced.fds;
    log(
      `control plane with ${shape.agents} agents: RSS ${mib(synced.rss)} MiB (${figures.rss_per_agent_kib} KiB/agent), ` +
        `heap ${mib(synced.heapUsed)} MiB (${figures.heap_per_agent_kib} KiB/agent; committed ` +
        `${figures.heap_committed_per_agent_kib} KiB/agent), native ${figures.native_per_agent_kib} KiB/agent, ${synced.fds} fds`,
    );

    const ctx: ScenarioContext = { mesh, shape, clusters, nextPod: 0, signal, log };
    const warmup = opts.warmup ?? WARMUP_CHANGES;
    await allNodesScenario(ctx, warmup);
    // CPU seconds so far: the control plane's, the agent workers' together.
    const cpuNow = async (): Promise<{ cp: number; agents: number }> => {
      const [c, ...w] = await Promise.all(
        [cp.child.pid!, ...workers.map((x) => x.child.pid!)].map((p) => processCpuSeconds(p)),
      );
      return { cp: c!, agents: w.reduce((a, b) => a + b, 0) };
    };
    const cpuBefore = await cpuNow();
    const trackerBefore = await cp.trackerCost();
    const revisionBefore = (await mesh.skew()).revision;
    t = performance.now();
    // CLOCK_MONOTONIC in µs, as the profiles' timestamps: a scenario's window to cut out of them.
    const monotonicUs = (): bigint => process.hrtime.bigint() / 1000n;
    const logWindow = (scenario: string, from: bigint): void => {
      if (opts.profileDir)
        log(`profile window (${scenario}): ${from}..${monotonicUs()} µs (monotonic)`);
    };
    const windowStart = monotonicUs();
    const all = await allNodesScenario(ctx, reps);
    const cpuAfter = await cpuNow();
    const trackerAfter = await cp.trackerCost();
    logWindow('a', windowStart);
    figures.all_p50_ms = round(percentile(all, 50));
    figures.all_p99_ms = round(percentile(all, 99));
    figures.all_max_ms = round(Math.max(...all));
    figures.all_samples = all.length;
    figures.cpu_controlplane_ms_per_change = round(((cpuAfter.cp - cpuBefore.cp) * 1000) / reps);
    figures.cpu_agents_ms_per_change = round(((cpuAfter.agents - cpuBefore.agents) * 1000) / reps);
    const trackerAcks = trackerAfter.acks - trackerBefore.acks;
    figures.tracker_cpu_ms_per_1000_acks = round(
      trackerAcks > 0 ? (trackerAfter.cpuUs - trackerBefore.cpuUs) / trackerAcks : 0,
      2,
    );
    const split = async (key: string, after: number, affected: number): Promise<void> => {
      const l = latencySplit(await mesh.skew(), after, affected);
      if (!l) return;
      figures[`${key}_queue_ms`] = round(l.queueMs, 1);
      figures[`${key}_transfer_ms`] = round(l.transferMs, 1);
      figures[`${key}_apply_ms`] = round(l.applyMs, 1);
    };
    await split('all', revisionBefore, shape.agents);
    log(
      `(a) all ${shape.agents} nodes: p50 ${figures.all_p50_ms} ms, p99 ${figures.all_p99_ms} ms (${all.length} ACKs)`,
    );

    // Warm-up, as (a) has: the first change creates the policy (the policy
    // engine's and the agents' first policy change in these processes); the
    // measured ones change it.
    await onePercentScenario(ctx, 1, 0);
    const pctBefore = (await mesh.skew()).revision;
    const pct = await onePercentScenario(ctx, Math.round(reps * 1.5), 1);
    await split('one_pct', pctBefore, shape.pctNodes);
    figures.one_pct_p50_ms = round(percentile(pct, 50));
    figures.one_pct_p99_ms = round(percentile(pct, 99));
    figures.one_pct_nodes = shape.pctNodes;
    log(
      `(b) ${shape.pctNodes} nodes: p50 ${figures.one_pct_p50_ms} ms, p99 ${figures.one_pct_p99_ms} ms`,
    );

    const burstBefore = (await mesh.skew()).revision;
    const burstCpuBefore = await cpuNow();
    const burstAcksBefore = (await cp.trackerCost()).acks;
    const burstStart = monotonicUs();
    const burst = await burstScenario(ctx, 100, 1_000);
    // From the first publish to every node's ACK of the last revision (and the Status reads of the wait).
    const burstCpuAfter = await cpuNow();
    logWindow('c', burstStart);
    const burstAcks = (await cp.trackerCost()).acks - burstAcksBefore;
    await split('burst', burstBefore, shape.agents);
    figures.burst_acks_per_node = round(burstAcks / shape.agents, 2);
    figures.burst_cpu_controlplane_ms = round((burstCpuAfter.cp - burstCpuBefore.cp) * 1000);
    figures.burst_cpu_agents_ms = round((burstCpuAfter.agents - burstCpuBefore.agents) * 1000);
    figures.burst_converge_ms = burst.convergeMs;
    figures.burst_ack_p50_ms = burst.p50Ms;
    figures.burst_ack_p90_ms = burst.p90Ms;
    figures.burst_etcd_revisions = burst.etcdRevisions;
    figures.burst_publish_ms = round(burst.publishMs);
    log(
      `(c) 100 changes in ${figures.burst_publish_ms} ms: last commit → last ACK ${burst.convergeMs} ms ` +
        `(the last revision's ACKs: p50 ${burst.p50Ms} ms, p90 ${burst.p90Ms} ms)`,
    );
    figures.machine_load_1m = round(loadavg()[0]!, 2);

    // Upward search: grow the mesh (longer node lists, their pods, their
    // agents in new workers) until (a)'s p99 reaches 1 s.
    const fdLimit = await openFileLimit();
    let best = figures.all_p99_ms < 1_000 ? shape.agents : 0;
    let searchStop =
      best === 0
        ? `p99 ${figures.all_p99_ms} ms at ${shape.agents}`
        : `reached --max-agents ${maxAgents}`;
    const stepSize = opts.searchStep ?? 1_000;
    while (best === shape.agents && shape.agents + stepSize <= maxAgents) {
      const next = propagationShape(shape.agents + stepSize, shape.podsPerNode);
      if (next.agents + 200 > fdLimit) {
        searchStop = `the control plane's open-file limit (${fdLimit}) would not fit ${next.agents} connections`;
        break;
      }
      const nextClusters = clusterSpecs(next);
      const added = ids(nextClusters).filter((a) => !agentFiles.has(`${a.cluster}/${a.node}`));
      log(`search: growing to ${next.agents} agents`);
      const files = await issueAgentCertificates(tlsDir, added, { concurrency, signal });
      for (const [k, f] of files) agentFiles.set(k, f);
      const before = clusters.map((c) => c.nodes.length);
      shape = { ...next, pctNodes: firstShape.pctNodes };
      clusters = nextClusters;
      ctx.shape = shape;
      ctx.clusters = clusters;
      for (const [i, c] of clusters.entries())
        await mesh.publish(podsOfNodes(shape, c, i, before[i]));
      await mesh.until(
        (v) => v.nodes === shape.agents,
        `${shape.agents} nodes in the mesh`,
        signal,
      );
      await connect(added);
      await allNodesScenario(ctx, warmup); // the new workers' agents are cold
      const lat = await allNodesScenario(ctx, Math.max(5, Math.round(reps / 2)));
      const p99 = percentile(lat, 99);
      figures[`all_p99_ms_at_${shape.agents}`] = round(p99);
      log(`search: ${shape.agents} agents, (a) p99 ${round(p99)} ms`);
      if (p99 < 1_000) best = shape.agents;
      else searchStop = `p99 ${round(p99)} ms at ${shape.agents} agents`;
    }
    if (best === shape.agents && shape.agents + stepSize > maxAgents)
      searchStop = `reached --max-agents ${maxAgents} (not a limit of the control plane)`;
    figures.max_agents_p99_under_1s = best;
    figures.fd_limit = Number.isFinite(fdLimit) ? fdLimit : 0;
    return { figures, shape: firstShape, searchStop };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: unknown) =>
        log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }
}

interface MemoryReport {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  fds: number;
}

interface ControlPlaneChild {
  child: Child;
  address: string;
  memory(): Promise<MemoryReport>;
  /** the tracker's hooks so far: ACKs handled and CPU µs spent (bench/lib/tracker-meter.ts) */
  trackerCost(): Promise<{ acks: number; cpuUs: number }>;
}

async function startControlPlane(
  infra: { etcd: { endpoint: string }; nats: { url: string } },
  files: TlsFiles,
  profileDir: string | undefined,
  log: (line: string) => void,
): Promise<ControlPlaneChild> {
  const nodeArgs = ['--expose-gc'];
  if (profileDir)
    nodeArgs.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      profileDir,
      '--heap-prof',
      '--heap-prof-dir',
      profileDir,
    );
  let onReady!: (address: string) => void;
  const ready = new Promise<string>((r) => (onReady = r));
  const memoryWaiters: ((m: MemoryReport) => void)[] = [];
  const trackerWaiters: ((c: { acks: number; cpuUs: number }) => void)[] = [];
  const child = spawnTsx(
    CP_SCRIPT,
    [
      '--etcd',
      infra.etcd.endpoint,
      '--nats',
      infra.nats.url,
      '--tls-ca',
      files.ca,
      '--tls-cert',
      files.cert,
      '--tls-key',
      files.key,
    ],
    {
      cwd: REPO_ROOT,
      nodeArgs,
      stdin: true,
      onLine: (line) => {
        const msg = JSON.parse(line) as {
          event: string;
          address?: string;
          rss: number;
          heapUsed: number;
          heapTotal: number;
          fds: number;
          acks: number;
          cpuUs: number;
        };
        if (msg.event === 'ready') onReady(msg.address!);
        else if (msg.event === 'memory') memoryWaiters.shift()?.(msg);
        else if (msg.event === 'tracker') trackerWaiters.shift()?.(msg);
      },
      onStderr: (line) => log(`[controlplane] ${line}`),
    },
  );
  const address = await Promise.race([
    ready,
    child.exited.then((code) => {
      throw new Error(`control plane exited (${code}) before serving`);
    }),
  ]);
  return {
    child,
    address,
    memory: () =>
      new Promise((resolve) => {
        memoryWaiters.push(resolve);
        child.send('memory');
      }),
    trackerCost: () =>
      new Promise((resolve) => {
        trackerWaiters.push(resolve);
        child.send('tracker');
      }),
  };
}

async function openFileLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return m?.[1] === undefined || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

function mib(bytes: number): number {
  return round(bytes / 1024 / 1024, 1);
}

/** The runner's entry: parses its options, prints figures (JSON on the last line with --json). */
export async function propagationBench(json: boolean, argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      json: { type: 'boolean' },
      agents: { type: 'string' },
      'max-agents': { type: 'string' },
      'search-step': { type: 'string' },
      'pods-per-node': { type: 'string' },
      'agents-per-worker': { type: 'string' },
      reps: { type: 'string' },
      warmup: { type: 'string' },
      profile: { type: 'string' },
      timeout: { type: 'string' },
    },
    strict: true,
  });
  const num = (name: keyof typeof values): number | undefined => {
    const v = values[name];
    if (v === undefined || typeof v !== 'string') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const interrupt = interruptSignal();
  try {
    const timeout = num('timeout');
    const o: PropagationOptions = {
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
    };
    const set = <K extends keyof PropagationOptions>(
      k: K,
      v: PropagationOptions[K] | undefined,
    ): void => {
      if (v !== undefined) o[k] = v;
    };
    set('agents', num('agents'));
    set('maxAgents', num('max-agents'));
    set('searchStep', num('search-step'));
    set('podsPerNode', num('pods-per-node'));
    set('agentsPerWorker', num('agents-per-worker'));
    set('reps', num('reps'));
    set('warmup', num('warmup'));
    set('profileDir', values.profile);
    set('timeoutMs', timeout === undefined ? undefined : timeout * 1000);
    const result = await runPropagation(o);
    const f = result.figures;
    const s = result.shape;
    const lines = [
      `propagation: ${s.agents} agents in ${s.clusters} clusters (${s.podsPerNode} pods per node), mTLS, ` +
        `control plane and agents in separate processes`,
      `  (a) change on every node    p50 ${f.all_p50_ms} ms, p99 ${f.all_p99_ms} ms, max ${f.all_max_ms} ms (commit → ACK, ${f.all_samples} ACKs)`,
      `      CPU per change: control plane ${f.cpu_controlplane_ms_per_change} ms, agents ${f.cpu_agents_ms_per_change} ms`,
      `      mean split: queue ${f.all_queue_ms} ms, transfer ${f.all_transfer_ms} ms, apply ${f.all_apply_ms} ms`,
      `      tracker CPU ${f.tracker_cpu_ms_per_1000_acks} ms per 1,000 ACKs (its hooks, in the control plane)`,
      `  (b) change on ${f.one_pct_nodes} nodes       p50 ${f.one_pct_p50_ms} ms, p99 ${f.one_pct_p99_ms} ms`,
      `      mean split: queue ${f.one_pct_queue_ms} ms, transfer ${f.one_pct_transfer_ms} ms, apply ${f.one_pct_apply_ms} ms`,
      `  (c) 100 changes in 1 s      last commit → last ACK ${f.burst_converge_ms} ms (${f.burst_etcd_revisions} etcd revisions; its ACKs p50 ${f.burst_ack_p50_ms} ms, p90 ${f.burst_ack_p90_ms} ms)`,
      `      mean split: queue ${f.burst_queue_ms} ms, transfer ${f.burst_transfer_ms} ms, apply ${f.burst_apply_ms} ms`,
      `      ${f.burst_acks_per_node} ACKs per node; CPU: control plane ${f.burst_cpu_controlplane_ms} ms, agents ${f.burst_cpu_agents_ms} ms`,
      `  RSS per agent               ${f.rss_per_agent_kib} KiB (after GC: V8 heap ${f.heap_per_agent_kib} KiB live, ` +
        `${f.heap_committed_per_agent_kib} KiB committed; native ${f.native_per_agent_kib} KiB)`,
      `  max agents, (a) p99 < 1 s   ${f.max_agents_p99_under_1s} (search stopped: ${result.searchStop}; fd limit ${f.fd_limit})`,
      `  certificates                ${f.cert_issue_s} s for ${s.agents + 2} (openssl CLI)`,
      `  (machine load average ${f.machine_load_1m}, 2 cores shared with agents, etcd, NATS)`,
    ];
    (json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ bench: 'propagation', figures: f })}\n`);
  } finally {
    interrupt.dispose();
  }
}
