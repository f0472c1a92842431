/**
 * `npm run bench -- identity-churn [--json] [--pods N] [--rate P] [--seed S] [--timeout S]`
 *
 * Pods through the real path: manifest files written into 3 cluster folders
 * → 3 cluster sources (child processes, publishing one change set per save to
 * JetStream) → an in-process control plane (durable consumer, one etcd
 * transaction per change set, identity allocation) → etcd watch → snapshot
 * cache. Per pod: the JetStream timestamp of the change set that carried it
 * (the time the stream stored it and sent the PubAck) → the first mesh
 * revision after which `identityOf(ip/32)` answers. DESIGN.md "Benchmarks"
 * defines the keys; bench/RESULTS.md states the workload's shape.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { abortAfter, EVENTS_STREAM, type ChangeSetEvent } from '../common/index.js';
import { ControlPlane } from '../controlplane/index.js';
import { startInfra, type Infra } from '../launcher/index.js';
import {
  MeshAdminClient,
  type JoinClusterResponse,
  type ListIdentitiesResponse,
} from '../proto/index.js';
import { spawnTsx, type Child } from './lib/child.js';
import { deadline, quietLogger, sleep, unary, until } from './lib/harness-helpers.js';
import { rpcDelta, scrapeEtcd, total } from './lib/etcd-metrics.js';
import { processCpuSeconds, processRunQueueSeconds } from './lib/proc-cpu.js';
import { parseNanoTimestamp, percentile, round } from './lib/stats.js';
import { DEFAULT_SHAPE, generateWorkload, type WorkloadShape } from './lib/workload.js';
import { interruptSignal, numericOptions, takeStringOption } from './lib/runner-options.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_SCRIPT = fileURLToPath(new URL('./lib/source-process.ts', import.meta.url));

export interface IdentityChurnOptions {
  /** total pods over the 3 clusters (default 10,000) */
  pods?: number;
  /** offered load: pods written per second, in files of `podsPerFile` (default 2,500) */
  rate?: number;
  seed?: number;
  /** the sources' quiet time after a file event before reloading (default 10 ms) */
  debounceMs?: number;
  /** the whole run, setup and teardown excluded (default 120 s + 30 ms per pod) */
  timeoutMs?: number;
  /** progress lines (default: none) */
  log?: (line: string) => void;
  /** writes a V8 CPU profile of each source process into this folder (`--cpu-prof-dir`) */
  profileDir?: string;
  signal?: AbortSignal;
}

export interface IdentityChurnResult {
  figures: Record<string, number>;
  /** etcd gRPC calls during the run, by method */
  etcdRpcs: Record<string, number>;
  /** the change sets that carried pods, in stream order */
  changeSets: ChangeSetTiming[];
  shape: WorkloadShape & { files: number; deployments: number; rate: number; debounceMs: number };
}

const DEFAULT_RATE = 2_500;
const DEFAULT_DEBOUNCE_MS = 10;

export async function runIdentityChurn(
  opts: IdentityChurnOptions = {},
): Promise<IdentityChurnResult> {
  const shape: WorkloadShape = {
    ...DEFAULT_SHAPE,
    pods: opts.pods ?? DEFAULT_SHAPE.pods,
    seed: opts.seed ?? DEFAULT_SHAPE.seed,
  };
  const rate = opts.rate ?? DEFAULT_RATE;
  const debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 120_000 + 30 * shape.pods;
  const { signal } = abortAfter(timeoutMs, opts.signal);
  const workload = generateWorkload(shape);

  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const root = await mkdtemp(join(tmpdir(), 'meshplane-bench-identity-churn-'));
    cleanups.push(() => rm(root, { recursive: true, force: true, maxRetries: 3 }));
    const dirs = new Map<string, string>();
    for (const c of workload.clusters) {
      const dir = join(root, c.name);
      await mkdir(dir);
      await writeFile(join(dir, 'cluster.yaml'), c.clusterYaml);
      await writeFile(join(dir, 'namespaces.yaml'), c.namespacesYaml);
      dirs.set(c.name, dir);
    }

    log('starting etcd and NATS');
    const infra: Infra = await startInfra({ signal, startTimeoutMs: 45_000 });
    cleanups.push(() => infra.stop());
    const cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: quietLogger(log),
    });
    cleanups.push(() => cp.stop());
    const { address } = await cp.start();
    const cache = cp.snapshots!;
    const admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    cleanups.push(() => Promise.resolve(admin.close()));
    for (const c of workload.clusters) {
      await unary<JoinClusterResponse>((cb) =>
        admin.joinCluster({ name: c.name, id: c.id }, new grpc.Metadata(), deadline(10_000), cb),
      );
    }

    // Pods written and not yet visible: checked on every mesh revision.
    const unseen = new Set<string>();
    const visibleAt = new Map<string, number>();
    let revisions = 0;
    const unsubscribe = cache.subscribe(() => {
      revisions += 1;
      if (unseen.size === 0) return;
      const now = Date.now();
      for (const ip of unseen) {
        if (cache.identityOf(`${ip}/32`) !== undefined) {
          visibleAt.set(ip, now);
          unseen.delete(ip);
        }
      }
    });
    cleanups.push(() => Promise.resolve(unsubscribe()));

    log('starting 3 cluster sources');
    const published = new Map<string, number>();
    let sourceFailure: string | undefined;
    const children: Child[] = [];
    cleanups.push(() => Promise.all(children.map((c) => c.stop())));
    for (const c of workload.clusters) {
      const child = spawnTsx(
        SOURCE_SCRIPT,
        ['--dir', dirs.get(c.name)!, '--nats', infra.nats.url, '--debounce', String(debounceMs)],
        {
          cwd: REPO_ROOT,
          onLine: (line) => {
            const msg = JSON.parse(line) as { event: string };
            if (msg.event === 'published') published.set(c.name, (published.get(c.name) ?? 0) + 1);
            else sourceFailure ??= `source ${c.name}: ${line}`;
          },
          onStderr: (line) => log(`[source ${c.name}] ${line}`),
          ...(opts.profileDir === undefined
            ? {}
            : { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] }),
        },
      );
      children.push(child);
      void child.exited.then((code) => {
        if (!signal.aborted) sourceFailure ??= `source ${c.name} exited (${code})`;
      });
    }
    const nodeCount = workload.clusters.reduce((n, c) => n + c.nodes.length, 0);
    await until(
      signal,
      () => published.size === workload.clusters.length && cache.nodes().length === nodeCount,
      'the sources to publish their initial state',
      () => sourceFailure,
    );

    const before = await scrapeEtcd(infra.etcd.endpoint, signal);
    // CPU used, and time spent runnable but waiting for a CPU, per part.
    const perPart = async (
      read: (pid: number | undefined) => Promise<number>,
    ): Promise<Record<string, number>> => ({
      controlplane: await read(process.pid),
      sources: (await Promise.all(children.map((c) => read(c.pid)))).reduce((a, b) => a + b, 0),
      etcd: await read(infra.etcd.pid),
      nats: await read(infra.nats.pid),
    });
    const cpu = async (): Promise<{
      used: Record<string, number>;
      waited: Record<string, number>;
    }> => ({
      used: await perPart(processCpuSeconds),
      waited: await perPart(processRunQueueSeconds),
    });
    const cpuBefore = await cpu();
    const revisionsBefore = revisions;
    const loadBefore = loadavg()[0]!;
    // When each pod's file was renamed into place: written → published is the source's lag.
    const writtenAt = new Map<string, number>();
    log(`writing ${shape.pods} pods in ${workload.files.length} files at ${rate} pods/s`);
    const intervalMs = (shape.podsPerFile / rate) * 1000;
    const writeStart = performance.now();
    let written = 0;
    let progressAt = 0;
    for (const [i, file] of workload.files.entries()) {
      const due = writeStart + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait, signal);
      signal.throwIfAborted();
      if (sourceFailure) throw new Error(sourceFailure);
      for (const p of file.pods) unseen.add(p.ip);
      // Written aside and renamed into place: one complete save, as editors do.
      const dir = dirs.get(file.cluster)!;
      const aside = join(dir, `.${file.path}.tmp`);
      await writeFile(aside, file.text);
      await rename(aside, join(dir, file.path));
      const now = Date.now();
      for (const p of file.pods) writtenAt.set(p.ip, now);
      written += file.pods.length;
      if (performance.now() - progressAt > 2_000) {
        progressAt = performance.now();
        log(`written ${written}/${shape.pods}, visible ${visibleAt.size}`);
      }
    }
    const writeS = (performance.now() - writeStart) / 1000;
    await until(
      signal,
      () => {
        if (performance.now() - progressAt > 2_000) {
          progressAt = performance.now();
          log(`visible ${visibleAt.size}/${shape.pods}`);
        }
        return unseen.size === 0;
      },
      'every pod to be visible',
      () => sourceFailure,
    );
    const runS = (performance.now() - writeStart) / 1000;
    const after = await scrapeEtcd(infra.etcd.endpoint, signal);
    const cpuAfter = await cpu();
    const cpuS = (part: string): number => round(cpuAfter.used[part]! - cpuBefore.used[part]!, 2);
    const waitS = (part: string): number =>
      round(cpuAfter.waited[part]! - cpuBefore.waited[part]!, 2);
    const meshRevisions = revisions - revisionsBefore;

    // Publish times from the stream itself.
    const nc = await connect({ servers: infra.nats.url, name: 'bench-identity-churn' });
    cleanups.push(() => nc.close());
    const messages = await readChangeSets(nc);
    const publishedAt = new Map<string, number>();
    for (const m of messages)
      for (const ip of m.ips) if (!publishedAt.has(ip)) publishedAt.set(ip, m.at);

    let identities = 0;
    for (const c of workload.clusters) {
      const res = await unary<ListIdentitiesResponse>((cb) =>
        admin.listIdentities({ cluster: c.name }, new grpc.Metadata(), deadline(10_000), cb),
      );
      identities += res.identities.length;
    }

    const sourceLags: number[] = [];
    for (const [ip, at] of publishedAt) {
      const written = writtenAt.get(ip);
      if (written !== undefined) sourceLags.push(at - written);
    }
    const latencies: number[] = [];
    let firstPublish = Infinity;
    let lastVisible = -Infinity;
    for (const [ip, visible] of visibleAt) {
      const at = publishedAt.get(ip);
      if (at === undefined)
        throw new Error(`pod ${ip} became visible but no change set carried it`);
      latencies.push(visible - at);
      firstPublish = Math.min(firstPublish, at);
      lastVisible = Math.max(lastVisible, visible);
    }
    const pods = visibleAt.size;
    const changeSets = breakdown(messages, visibleAt, writtenAt);
    const rpcs = rpcDelta(before.rpcs, after.rpcs);
    const perEndpoint = (method: string): number => round((rpcs.get(method) ?? 0) / pods, 3);
    return {
      figures: {
        endpoints_per_s: round(pods / ((lastVisible - firstPublish) / 1000)),
        visible_p50_ms: round(percentile(latencies, 50)),
        visible_p99_ms: round(percentile(latencies, 99)),
        visible_max_ms: round(Math.max(...latencies)),
        source_lag_p50_ms: round(percentile(sourceLags, 50)),
        source_lag_p99_ms: round(percentile(sourceLags, 99)),
        etcd_requests_per_endpoint: round(total(rpcs) / pods, 3),
        etcd_range_per_endpoint: perEndpoint('Range'),
        etcd_txn_per_endpoint: perEndpoint('Txn'),
        identities_allocated: identities,
        deployments: workload.deployments,
        pods,
        change_sets: changeSets.length,
        pods_per_change_set: round(pods / Math.max(1, changeSets.length)),
        etcd_wal_fsyncs: after.walFsyncs - before.walFsyncs,
        etcd_wal_fsync_s: round(after.walFsyncSeconds - before.walFsyncSeconds, 3),
        etcd_backend_commit_s: round(after.backendCommitSeconds - before.backendCommitSeconds, 3),
        mesh_revisions: meshRevisions,
        cpu_controlplane_s: cpuS('controlplane'),
        cpu_sources_s: cpuS('sources'),
        cpu_etcd_s: cpuS('etcd'),
        cpu_nats_s: cpuS('nats'),
        runqueue_wait_controlplane_s: waitS('controlplane'),
        runqueue_wait_sources_s: waitS('sources'),
        offered_pods_per_s: rate,
        machine_load_1m: round(loadBefore, 2),
        write_s: round(writeS, 2),
        run_s: round(runS, 2),
      },
      etcdRpcs: Object.fromEntries(rpcs),
      changeSets,
      shape: {
        ...shape,
        files: workload.files.length,
        deployments: workload.deployments,
        rate,
        debounceMs,
      },
    };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: unknown) =>
        log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }
}

interface StoredChangeSet {
  seq: number;
  cluster: string;
  /** when the stream stored it (the PubAck's time), Unix ms */
  at: number;
  ips: string[];
}

/** Every change set in the events stream that carried pods, with the stream's timestamp. */
async function readChangeSets(nc: NatsConnection): Promise<StoredChangeSet[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(EVENTS_STREAM);
  const out: StoredChangeSet[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(EVENTS_STREAM, { seq });
    const ev = m.json<ChangeSetEvent>();
    const ips: string[] = [];
    for (const o of ev.upserts) if (o.kind === 'Pod') ips.push(...o.ips);
    if (ips.length > 0)
      out.push({ seq, cluster: ev.cluster.name, at: parseNanoTimestamp(m.timestamp), ips });
  }
  return out;
}

export interface ChangeSetTiming {
  seq: number;
  cluster: string;
  pods: number;
  /** the last of its pods' files renamed into place, ms after the first change set was published */
  writtenMs: number;
  /** stored in the stream, ms after the first change set was */
  publishedMs: number;
  /** its last pod visible, ms after the first change set was published */
  visibleMs: number;
  /**
   * visible − max(published, previous change set visible): the control
   * plane's time on this one when change sets are committed one after another
   */
  serviceMs: number;
}

function breakdown(
  messages: readonly StoredChangeSet[],
  visibleAt: ReadonlyMap<string, number>,
  writtenAt: ReadonlyMap<string, number>,
): ChangeSetTiming[] {
  const t0 = Math.min(...messages.map((m) => m.at));
  const rows = messages.map((m) => ({
    seq: m.seq,
    cluster: m.cluster,
    pods: m.ips.length,
    at: m.at,
    written: Math.max(...m.ips.map((ip) => writtenAt.get(ip) ?? Number.NaN)),
    visible: Math.max(...m.ips.map((ip) => visibleAt.get(ip) ?? Number.NaN)),
  }));
  const byVisible = [...rows].sort((a, b) => a.visible - b.visible);
  const previous = new Map(
    byVisible.map((r, i) => [r.seq, i > 0 ? byVisible[i - 1]!.visible : -Infinity]),
  );
  return rows.map((r) => ({
    seq: r.seq,
    cluster: r.cluster,
    pods: r.pods,
    writtenMs: round(r.written - t0),
    publishedMs: round(r.at - t0),
    visibleMs: round(r.visible - t0),
    serviceMs: round(r.visible - Math.max(r.at, previous.get(r.seq)!)),
  }));
}

/** The runner's entry: parses its options, prints figures (JSON on the last line with --json). */
export async function identityChurnBench(json: boolean, argv: readonly string[]): Promise<void> {
  // --profile DIR: the sources' CPU profiles; the control plane runs in this
  // process, so profile it with `node --cpu-prof --import tsx bench/run.ts ...`.
  const { value: profile, rest } = takeStringOption(argv, 'profile');
  const { pods, rate, seed, timeout } = numericOptions(rest, ['pods', 'rate', 'seed', 'timeout']);
  const interrupt = interruptSignal();
  try {
    const result = await runIdentityChurn({
      ...(pods !== undefined ? { pods: Math.round(pods) } : {}),
      ...(rate !== undefined ? { rate } : {}),
      ...(seed !== undefined ? { seed: Math.round(seed) } : {}),
      ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      ...(profile !== undefined ? { profileDir: profile } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
    });
    const f = result.figures;
    const s = result.shape;
    const lines = [
      `identity-churn: ${f.pods} pods, ${s.clusters} clusters × ${s.nodesPerCluster} nodes, ` +
        `${s.deployments} deployments of ${s.replicas.min}–${s.replicas.max} replicas, ` +
        `${s.files} files of ≤${s.podsPerFile} pods at ${s.rate} pods/s (seed ${s.seed})`,
      `  endpoints/s                 ${f.endpoints_per_s}`,
      `  visible p50 / p99 / max     ${f.visible_p50_ms} / ${f.visible_p99_ms} / ${f.visible_max_ms} ms`,
      `  source lag p50 / p99        ${f.source_lag_p50_ms} / ${f.source_lag_p99_ms} ms (file renamed into place → change set stored)`,
      `  etcd requests / endpoint    ${f.etcd_requests_per_endpoint} ` +
        `(${Object.entries(result.etcdRpcs)
          .map(([m, n]) => `${m} ${n}`)
          .join(', ')})`,
      `  identities allocated        ${f.identities_allocated}`,
      `  change sets                 ${f.change_sets} (${f.pods_per_change_set} pods each on average), ` +
        `${f.mesh_revisions} mesh revisions`,
    ];
    lines.push(
      `  etcd WAL fsyncs             ${f.etcd_wal_fsyncs} taking ${f.etcd_wal_fsync_s} s; backend commits ${f.etcd_backend_commit_s} s`,
      `  CPU, first write → all visible (${f.run_s} s): control plane + benchmark ${f.cpu_controlplane_s} s, ` +
        `sources ${f.cpu_sources_s} s, etcd ${f.cpu_etcd_s} s, NATS ${f.cpu_nats_s} s ` +
        `(machine load average ${f.machine_load_1m} before the run, 2 cores)`,
      `  main thread waiting for a CPU (runnable, not running): control plane + benchmark ` +
        `${f.runqueue_wait_controlplane_s} s, sources ${f.runqueue_wait_sources_s} s (sum of 3)`,
      `  change sets (stream seq, cluster, pods, last file written → published → visible, ms after the first publish; service ms):`,
      ...result.changeSets
        .slice(0, 40)
        .map(
          (c) =>
            `    #${c.seq} ${c.cluster} ${c.pods} pods: ${c.writtenMs} → ${c.publishedMs} → ${c.visibleMs} (service ${c.serviceMs})`,
        ),
      ...(result.changeSets.length > 40 ? [`    … ${result.changeSets.length - 40} more`] : []),
    );
    // With --json the JSON line is the only stdout; people still see the figures on stderr.
    (json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ bench: 'identity-churn', figures: result.figures })}\n`,
      );
    }
  } finally {
    interrupt.dispose();
  }
}
