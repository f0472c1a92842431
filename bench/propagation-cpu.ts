/**
 * `npm run bench -- propagation-cpu [--json] [--agents N] [--changes R]
 *    [--burst C] [--burst-ms W] [--agents-per-worker A] [--server-option K=V ...]
 *    [--no-heap-trim] [--no-mmap-threshold]`
 *
 * The distribution path alone, for CPU A/B of the xDS server and the node
 * agent: the real SnapshotCache and XdsServer (with the gRPC server options
 * the control plane uses) in this process, N real NodeAgents with emulated
 * datapaths in worker processes (bench/lib/agent-worker.ts), each with its
 * own mTLS connection. No etcd, NATS, ingest, tracker or Status polling:
 * a change is a model change folded straight into the cache, so the figures
 * are the distribution's own CPU per change and node (this process, and the
 * agent workers from /proc), which compare between two versions of the code
 * whatever else the machine runs; wall-clock figures here still measure the
 * machine. All agents present one agent certificate (the server's node
 * check runs once per stream, not per message).
 *
 * Scenarios, on the workload of `propagation` (3 clusters, P pods per node):
 * - changes: R new pods one at a time, each waited for until every node has
 *   ACKed it (one ipcache shard on every node);
 * - burst: C new pods as C mesh revisions spread over W ms (more revisions
 *   than the ingest's folding would make: the coalescing is the xDS
 *   server's), then last revision → every node ACKed the newest state, and
 *   pushes per node.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { systemClock, type Logger, type MeshObject } from '../common/index.js';
import { readTlsMaterial, serverCredentials, writeMeshTls } from '../common/tls/index.js';
import { MeshModel } from '../controlplane/model/index.js';
import { SnapshotCache } from '../controlplane/snapshot/index.js';
import { keyLayout } from '../controlplane/store/index.js';
import {
  XdsServer,
  discoveryServerOptions,
  glibcFixMmapThreshold,
  glibcMallocTrim,
  type XdsCallbacks,
} from '../controlplane/xds/index.js';
import { startWorkers, type Worker } from './lib/agent-fleet.js';
import { processCpuSeconds } from './lib/proc-cpu.js';
import {
  clusterSpecs,
  newPodChange,
  podsOfNodes,
  propagationShape,
} from './lib/propagation-workload.js';
import { interruptSignal } from './lib/runner-options.js';
import { collector, settledMemory } from './lib/settled-memory.js';
import { percentile, round } from './lib/stats.js';

export interface PropagationCpuOptions {
  agents?: number;
  podsPerNode?: number;
  agentsPerWorker?: number;
  changes?: number;
  burst?: number;
  burstMs?: number;
  /** merged over the control plane's gRPC server options (A/B of a setting) */
  serverOptions?: grpc.ServerOptions;
  /** the agent workers' CPU profiles go here (node --cpu-prof); profile this process with node --cpu-prof yourself */
  agentProfileDir?: string;
  /** XdsServerOptions.pushTiming.sliceSize (A/B) */
  sliceSize?: number;
  /** the control plane's heap trim after connection churn (default on, as the control plane) */
  heapTrim?: boolean;
  /** glibc's mmap threshold fixed as the control plane fixes it (default on; process-wide, so off only in a fresh process) */
  mmapThreshold?: boolean;
  /** a pass-through server interceptor, as the control plane's admin guard is for discovery (default on) */
  interceptor?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

const quiet: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => quiet,
};

/** A model event for an object (pods with an identity: cluster id in the high bits, one per app label). */
function put(layout: ReturnType<typeof keyLayout>, clusterId: number, o: MeshObject) {
  const value =
    o.kind === 'Pod'
      ? {
          ...o,
          identity:
            ((clusterId << 16) | (256 + (o.labels.tier ? 99 : Number(o.labels.app?.slice(4))))) >>>
            0,
        }
      : o;
  return { type: 'put' as const, key: layout.object(o.cluster, o), value: JSON.stringify(value) };
}

export async function runPropagationCpu(
  opts: PropagationCpuOptions = {},
): Promise<Record<string, number>> {
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal ?? new AbortController().signal;
  const shape = propagationShape(opts.agents ?? 300, opts.podsPerNode ?? 5);
  const clusters = clusterSpecs(shape);
  const layout = keyLayout();
  const cleanups: (() => Promise<unknown>)[] = [];
  const figures: Record<string, number> = {};
  try {
    const root = await mkdtemp(join(tmpdir(), 'meshplane-bench-propagation-cpu-'));
    cleanups.push(() => rm(root, { recursive: true, force: true, maxRetries: 3 }));
    const first = { cluster: clusters[0]!.name, node: clusters[0]!.nodes[0]! };
    const tls = await writeMeshTls(
      join(root, 'tls'),
      { agents: [first], adminUser: 'bench', days: 1 },
      { signal, concurrency: 2 },
    );
    const agentFiles = tls.agents.get(`${first.cluster}/${first.node}`)!;

    // The mesh: clusters with their node lists, a namespace and P pods per node.
    const model = new MeshModel(layout);
    const cache = new SnapshotCache();
    const events = clusters.flatMap((c, i) => [
      {
        type: 'put' as const,
        key: layout.member(c.name),
        value: JSON.stringify({ name: c.name, id: c.id, joinedAt: '' }),
      },
      { type: 'put' as const, key: layout.clusterInfo(c.name), value: JSON.stringify(c) },
      ...podsOfNodes(shape, c, i).upserts.map((o) => put(layout, c.id, o)),
    ]);
    let revision = 1;
    cache.update(revision, Date.now(), model, model.apply(events));

    // Which snapshot each node last ACKed as current, and pushes sent.
    const acked = new Map<string, unknown>();
    let pushes = 0;
    let waiter:
      { pending: Set<string>; since: number; latencies: number[]; done: () => void } | undefined;
    const callbacks: XdsCallbacks = {
      onPush: () => void (pushes += 1),
      onAck: (n, a) => {
        if (!a.current) return;
        acked.set(n.key, cache.snapshot(n.key));
        if (waiter?.pending.delete(n.key)) {
          waiter.latencies.push(a.receivedAt - waiter.since);
          if (waiter.pending.size === 0) waiter.done();
        }
      },
    };
    if (opts.mmapThreshold !== false) glibcFixMmapThreshold();
    const heapTrim = opts.heapTrim === false ? undefined : glibcMallocTrim();
    const xds = new XdsServer(cache, callbacks, systemClock, quiet, {
      ...(heapTrim ? { heapTrim } : {}),
      ...(opts.sliceSize !== undefined ? { pushTiming: { sliceSize: opts.sliceSize } } : {}),
    });
    cleanups.push(() => Promise.resolve(xds.close()));
    const server = new grpc.Server({
      ...discoveryServerOptions(),
      // The control plane's admin guard lets discovery calls through like this.
      ...(opts.interceptor === false
        ? {}
        : {
            interceptors: [
              (
                _m: grpc.ServerMethodDefinition<unknown, unknown>,
                call: grpc.ServerInterceptingCallInterface,
              ) => new grpc.ServerInterceptingCall(call),
            ],
          }),
      ...opts.serverOptions,
    });
    server.addService(...xds.service());
    const material = await readTlsMaterial(tls.controlPlane);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCredentials(material), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    cleanups.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));

    /** Resolves once every node not yet current has ACKed its current snapshot. */
    const allCurrent = (since: number): Promise<number[]> => {
      const pending = new Set(cache.nodes().filter((k) => acked.get(k) !== cache.snapshot(k)));
      const latencies: number[] = [];
      if (pending.size === 0) return Promise.resolve(latencies);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out: ${pending.size} nodes not current`)),
          120_000,
        );
        waiter = {
          pending,
          since,
          latencies,
          done: () => {
            clearTimeout(timer);
            waiter = undefined;
            resolve(latencies);
          },
        };
      });
    };

    const gc = collector();
    const idle = await settledMemory(gc);
    const workers: Worker[] = [];
    cleanups.push(() => Promise.all(workers.map((w) => w.child.stop())));
    const ids = clusters.flatMap((c) => c.nodes.map((node) => ({ cluster: c.name, node })));
    let t = performance.now();
    workers.push(
      ...(await startWorkers(
        root,
        `127.0.0.1:${port}`,
        tls.ca.cert,
        ids.map((a) => ({ ...a, files: agentFiles })),
        {
          perWorker: opts.agentsPerWorker ?? 250,
          log,
          ...(opts.agentProfileDir
            ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', opts.agentProfileDir] }
            : {}),
        },
      )),
    );
    await Promise.all(workers.map((w) => w.ready));
    await allCurrent(Date.now());
    log(
      `${ids.length} agents connected and current in ${round((performance.now() - t) / 1000, 1)} s`,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    const synced = await settledMemory(gc);
    figures.rss_per_agent_kib = round((synced.rss - idle.rss) / 1024 / ids.length, 1);
    figures.native_per_agent_kib = round(
      (synced.rss - synced.heapTotal - (idle.rss - idle.heapTotal)) / 1024 / ids.length,
      1,
    );
    figures.heap_per_agent_kib = round((synced.heapUsed - idle.heapUsed) / 1024 / ids.length, 1);
    log(
      `RSS per agent ${figures.rss_per_agent_kib} KiB (native ${figures.native_per_agent_kib}, heap ${figures.heap_per_agent_kib})`,
    );

    let nextPod = 0;
    const change = (): void => {
      const ev = newPodChange(shape, clusters, nextPod++);
      const c = clusters.find((x) => x.name === ev.cluster.name)!;
      revision += 1;
      cache.update(
        revision,
        Date.now(),
        model,
        model.apply(ev.upserts.map((o) => put(layout, c.id, o))),
      );
    };
    const cpu = async (): Promise<{ self: number; agents: number }> => {
      const u = process.cpuUsage();
      const agents = await Promise.all(workers.map((w) => processCpuSeconds(w.child.pid)));
      return { self: (u.user + u.system) / 1e6, agents: agents.reduce((a, b) => a + b, 0) };
    };

    // Warm-up, then R changes one at a time.
    for (let i = 0; i < 3; i++) {
      const since = Date.now();
      change();
      await allCurrent(since);
    }
    const reps = opts.changes ?? 20;
    const latencies: number[] = [];
    let c0 = await cpu();
    t = performance.now();
    const windowStart = process.hrtime.bigint() / 1000n;
    for (let i = 0; i < reps && !signal.aborted; i++) {
      const since = Date.now();
      change();
      latencies.push(...(await allCurrent(since)));
    }
    let c1 = await cpu();
    log(
      `profile window (changes): ${windowStart}..${process.hrtime.bigint() / 1000n} µs (monotonic)`,
    );
    const n = ids.length;
    figures.agents = n;
    figures.changes_cpu_server_us_per_node = round(((c1.self - c0.self) * 1e6) / reps / n);
    figures.changes_cpu_agents_us_per_node = round(((c1.agents - c0.agents) * 1e6) / reps / n);
    figures.changes_p50_ms = round(percentile(latencies, 50));
    figures.changes_p99_ms = round(percentile(latencies, 99));
    figures.changes_wall_ms_per_change = round((performance.now() - t) / reps);
    log(
      `changes: CPU per node and change: server ${figures.changes_cpu_server_us_per_node} µs, ` +
        `agents ${figures.changes_cpu_agents_us_per_node} µs; p50 ${figures.changes_p50_ms} ms, p99 ${figures.changes_p99_ms} ms`,
    );

    // Burst: C revisions spread over W ms, then everyone current.
    const count = opts.burst ?? 100;
    const windowMs = opts.burstMs ?? 1_000;
    await new Promise((r) => setTimeout(r, 1_000));
    c0 = await cpu();
    const pushesBefore = pushes;
    const burstWindowStart = process.hrtime.bigint() / 1000n;
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const wait = start + (i * windowMs) / count - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      change();
    }
    const last = Date.now();
    const burst = await allCurrent(last);
    c1 = await cpu();
    log(
      `profile window (burst): ${burstWindowStart}..${process.hrtime.bigint() / 1000n} µs (monotonic)`,
    );
    figures.burst_publish_ms = round(performance.now() - start - (Date.now() - last));
    figures.burst_converge_ms = round(Math.max(0, ...burst));
    figures.burst_pushes_per_node = round((pushes - pushesBefore) / n, 2);
    figures.burst_cpu_server_ms = round((c1.self - c0.self) * 1000);
    figures.burst_cpu_agents_ms = round((c1.agents - c0.agents) * 1000);
    figures.machine_load_1m = round(loadavg()[0]!, 2);
    log(
      `burst: ${count} revisions in ${figures.burst_publish_ms} ms, last → all current ${figures.burst_converge_ms} ms, ` +
        `${figures.burst_pushes_per_node} pushes per node, CPU server ${figures.burst_cpu_server_ms} ms, agents ${figures.burst_cpu_agents_ms} ms`,
    );
    return figures;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: unknown) =>
        log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }
}

export async function propagationCpuBench(json: boolean, argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      json: { type: 'boolean' },
      agents: { type: 'string' },
      'pods-per-node': { type: 'string' },
      'agents-per-worker': { type: 'string' },
      changes: { type: 'string' },
      burst: { type: 'string' },
      'burst-ms': { type: 'string' },
      'server-option': { type: 'string', multiple: true },
      'no-interceptor': { type: 'boolean' },
      'no-heap-trim': { type: 'boolean' },
      'no-mmap-threshold': { type: 'boolean' },
      'agent-profile': { type: 'string' },
      'slice-size': { type: 'string' },
    },
    strict: true,
  });
  const num = (v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive integer: ${v}`);
    return n;
  };
  const serverOptions: Record<string, number | string> = {};
  for (const kv of values['server-option'] ?? []) {
    const i = kv.indexOf('=');
    if (i < 0) throw new Error(`--server-option wants KEY=VALUE, got ${kv}`);
    const v = kv.slice(i + 1);
    serverOptions[kv.slice(0, i)] = /^-?\d+$/.test(v) ? Number(v) : v;
  }
  const interrupt = interruptSignal();
  try {
    const o: PropagationCpuOptions = {
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
      serverOptions,
      interceptor: !values['no-interceptor'],
      heapTrim: !values['no-heap-trim'],
      mmapThreshold: !values['no-mmap-threshold'],
    };
    const set = <K extends keyof PropagationCpuOptions>(
      k: K,
      v: PropagationCpuOptions[K] | undefined,
    ): void => {
      if (v !== undefined) o[k] = v;
    };
    set('agents', num(values.agents));
    set('podsPerNode', num(values['pods-per-node']));
    set('agentsPerWorker', num(values['agents-per-worker']));
    set('changes', num(values.changes));
    set('burst', num(values.burst));
    set('burstMs', num(values['burst-ms']));
    set('agentProfileDir', values['agent-profile']);
    set('sliceSize', num(values['slice-size']));
    const f = await runPropagationCpu(o);
    const text = Object.entries(f)
      .map(([k, v]) => `  ${k.padEnd(34)} ${v}`)
      .join('\n');
    (json ? process.stderr : process.stdout).write(`propagation-cpu\n${text}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ bench: 'propagation-cpu', figures: f })}\n`);
  } finally {
    interrupt.dispose();
  }
}
