/**
 * `npm run bench -- services [--json] [--services N] [--rate E] [--seed S] [--timeout S] [--record FILE]`
 *
 * ServiceExport → ServiceImport under endpoint churn. Real etcd and NATS
 * (launcher), an in-process control plane, 3 clusters joined through the
 * admin API. Change sets are published straight to JetStream subjects
 * `meshplane.events.<cluster>.<kind>`, as a cluster source would (no manifest
 * parsing: this measures the control plane, not the sources): first the
 * initial state in rounds, then, from a separate process, a steady stream of
 * small change sets each replacing a few pods (new name and IP, same labels).
 * Per churned endpoint: the JetStream timestamp of its change set (stored,
 * PubAck sent) → the first mesh revision after which its import in
 * `cp.snapshots.services.derived` has the new address and not the old one for
 * that cluster (checked in a `subscribe` listener). DESIGN.md "Benchmarks"
 * defines the keys; bench/RESULTS.md states the workload's shape.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from 'nats';
import { abortAfter, EVENTS_STREAM, type SourceHealthEvent } from '../common/index.js';
import { ControlPlane } from '../controlplane/index.js';
import { startInfra, type Infra } from '../launcher/index.js';
import { MeshAdminClient, type JoinClusterResponse } from '../proto/index.js';
import { spawnTsx, type Child } from './lib/child.js';
import { deadline, quietLogger, unary, until } from './lib/harness-helpers.js';
import { recordMeshHistory } from './lib/mesh-recording.js';
import { publishChangeSet } from './lib/publish-parts.js';
import { processCpuSeconds, processRunQueueSeconds } from './lib/proc-cpu.js';
import {
  DEFAULT_SERVICES_SHAPE,
  generateServicesWorkload,
  type ChurnedEndpoint,
  type ServicesShape,
} from './lib/services-workload.js';
import { parseNanoTimestamp, percentile, round } from './lib/stats.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const PUBLISHER_SCRIPT = fileURLToPath(new URL('./lib/churn-publisher.ts', import.meta.url));

export interface ServicesBenchOptions {
  /** Services exported from each of the 3 clusters (default 2,000) */
  services?: number;
  /** offered churn: endpoints replaced per second (default 200, in change sets of 5) */
  rate?: number;
  seed?: number;
  /** the whole run, setup and teardown excluded (default 120 s + 20 ms per service) */
  timeoutMs?: number;
  /** write the mesh-state etcd history to this file at the end, for `services-replay` */
  record?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ServicesBenchResult {
  figures: Record<string, number>;
  shape: ServicesShape & { pods: number; churnChangeSets: number; rate: number };
}

const DEFAULT_RATE = 200;

interface Pending extends ChurnedEndpoint {
  index: number;
  doneAt?: number;
  /** when this replica observed the etcd commit of the revision that updated it */
  committedAt?: number;
}

export async function runServicesBench(
  opts: ServicesBenchOptions = {},
): Promise<ServicesBenchResult> {
  const shape: ServicesShape = {
    ...DEFAULT_SERVICES_SHAPE,
    services: opts.services ?? DEFAULT_SERVICES_SHAPE.services,
    seed: opts.seed ?? DEFAULT_SERVICES_SHAPE.seed,
  };
  const rate = opts.rate ?? DEFAULT_RATE;
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 120_000 + 20 * shape.services;
  const { signal } = abortAfter(timeoutMs, opts.signal);
  const workload = generateServicesWorkload(shape);
  const clusterCount = workload.clusters.length;

  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const root = await mkdtemp(join(tmpdir(), 'meshplane-bench-services-'));
    cleanups.push(() => rm(root, { recursive: true, force: true, maxRetries: 3 }));

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
    const nc = await connect({ servers: infra.nats.url, name: 'bench-services' });
    cleanups.push(() => nc.close());
    // Health keeps each cluster's source lease, as a running source would.
    const heartbeat = setInterval(() => {
      for (const c of workload.clusters) {
        const h: SourceHealthEvent = {
          apiVersion: 'meshplane/v1',
          cluster: c.name,
          origin: 'bench:services',
          at: Date.now(),
          lastError: '',
        };
        nc.publish(`meshplane.health.${c.name}`, JSON.stringify(h));
      }
    }, 1_000);
    cleanups.push(() => Promise.resolve(clearInterval(heartbeat)));

    // Instrumentation, benchmark-only: time the cache's update per etcd
    // revision and the ServiceImport derivation inside it.
    type Phase = 'initial' | 'churn';
    let phase: Phase = 'initial';
    const timings = {
      snapshot: { initial: [] as number[], churn: [] as number[] },
      services: { initial: [] as number[], churn: [] as number[] },
    };
    const services = cache.services;
    const servicesUpdate = services.update.bind(services);
    services.update = (model, change) => {
      const t = performance.now();
      try {
        return servicesUpdate(model, change);
      } finally {
        timings.services[phase].push(performance.now() - t);
      }
    };
    const cacheUpdate = cache.update.bind(cache);
    cache.update = (...args) => {
      const t = performance.now();
      try {
        return cacheUpdate(...args);
      } finally {
        timings.snapshot[phase].push(performance.now() - t);
      }
    };

    // Checked on every mesh revision.
    const complete = (endpoints: { cluster: string; addresses: string[] }[]): boolean =>
      endpoints.length === clusterCount &&
      endpoints.every((e) => e.addresses.length === shape.endpointsPerService);
    let completeImports = 0;
    const pending = new Map<string, Pending[]>();
    /** import key -> the import object last checked (unchanged imports are skipped) */
    const checked = new Map<string, object>();
    let pendingCount = 0;
    let lastDerived: unknown;
    let revisions = 0;
    let lastRevisionAt = 0;
    const unsubscribe = cache.subscribe((rev) => {
      revisions += 1;
      const now = Date.now();
      if (phase === 'initial') {
        const derived = cache.services.derived;
        if (derived === lastDerived) return;
        lastDerived = derived;
        lastRevisionAt = now;
        completeImports = derived.imports.filter((i) => complete(i.endpoints)).length;
        return;
      }
      lastRevisionAt = now;
      if (pendingCount === 0) return;
      // Only the imports with endpoints still pending are looked at, and of
      // those only the ones this revision replaced (a recomputed import is a
      // new object), so the check costs the control plane's event loop little.
      for (const [key, list] of pending) {
        const slash = key.indexOf('/');
        const imp = cache.services.importOf(key.slice(0, slash), key.slice(slash + 1));
        if (!imp || checked.get(key) === imp) continue;
        checked.set(key, imp);
        for (let i = list.length - 1; i >= 0; i--) {
          const p = list[i]!;
          const addrs = imp.endpoints.find((e) => e.cluster === p.cluster)?.addresses ?? [];
          if (addrs.includes(p.newIp) && !addrs.includes(p.oldIp)) {
            p.doneAt = now;
            p.committedAt = rev.commitTime;
            list.splice(i, 1);
            pendingCount -= 1;
          }
        }
        if (list.length === 0) pending.delete(key);
      }
    });
    cleanups.push(() => Promise.resolve(unsubscribe()));

    // Initial state, one change set per cluster per round; a round waits for
    // the previous one, so the consumer never folds more than one change set
    // per cluster into a transaction (etcd's --max-txn-ops).
    const js = nc.jetstream();
    log(
      `initial state: ${shape.services} services × ${clusterCount} clusters × ` +
        `${shape.endpointsPerService} endpoints = ${workload.pods} pods in ${workload.rounds.length} rounds`,
    );
    const initialStart = Date.now();
    let expected = 0;
    for (const [r, round] of workload.rounds.entries()) {
      for (const ev of round) await publishChangeSet(js, ev);
      expected += workload.servicesByRound[r]!.length;
      await until(signal, () => completeImports >= expected, `initial round ${r + 1}`);
      log(
        `round ${r + 1}: ${completeImports} imports complete after ${Date.now() - initialStart} ms`,
      );
    }
    const initialMs = Date.now() - initialStart;

    // Churn.
    const all: Pending[] = [];
    workload.churn.forEach((cs, index) => {
      for (const e of cs.endpoints) {
        const p: Pending = { ...e, index };
        all.push(p);
        const k = `${e.namespace}/${e.service}`;
        const list = pending.get(k) ?? [];
        list.push(p);
        pending.set(k, list);
      }
    });
    pendingCount = all.length;
    const file = join(root, 'churn.json');
    await writeFile(file, JSON.stringify(workload.churn.map((c) => c.event)));
    const intervalMs = (shape.podsPerChangeSet / rate) * 1000;
    const seqOf = new Map<number, number>();
    let publisherDone = false;
    let publisherFailure: string | undefined;
    const cpuBefore = {
      cpu: await processCpuSeconds(process.pid),
      wait: await processRunQueueSeconds(process.pid),
      etcd: await processCpuSeconds(infra.etcd.pid),
    };
    const loadBefore = loadavg()[0]!;
    const revisionsBefore = revisions;
    const churnAfterRevision = cache.latest.revision;
    phase = 'churn';
    lastDerived = cache.services.derived;
    log(
      `churn: ${all.length} endpoints in ${workload.churn.length} change sets, one every ${round(intervalMs)} ms`,
    );
    const children: Child[] = [];
    cleanups.push(() => Promise.all(children.map((c) => c.stop())));
    const child = spawnTsx(
      PUBLISHER_SCRIPT,
      ['--file', file, '--nats', infra.nats.url, '--interval', String(intervalMs)],
      {
        cwd: REPO_ROOT,
        onLine: (line) => {
          const msg = JSON.parse(line) as { event: string; index?: number; seq?: number };
          if (msg.event === 'published') seqOf.set(msg.index!, msg.seq!);
          else if (msg.event === 'done') publisherDone = true;
        },
        onStderr: (line) => log(`[publisher] ${line}`),
      },
    );
    children.push(child);
    void child.exited.then((code) => {
      if (code !== 0 && !signal.aborted) publisherFailure ??= `publisher exited (${code})`;
    });
    let progressAt = performance.now();
    await until(
      signal,
      () => {
        if (publisherFailure !== undefined) throw new Error(publisherFailure);
        if (performance.now() - progressAt > 2_000) {
          progressAt = performance.now();
          log(
            `published ${seqOf.size}/${workload.churn.length}, pending endpoints ${pendingCount}`,
          );
        }
        return publisherDone && pendingCount === 0;
      },
      'every churned endpoint in its import',
    );
    const cpuAfter = {
      cpu: await processCpuSeconds(process.pid),
      wait: await processRunQueueSeconds(process.pid),
      etcd: await processCpuSeconds(infra.etcd.pid),
    };
    const churnRevisions = revisions - revisionsBefore;

    // Stored timestamps from the stream itself.
    const storedAt = await storedTimes(nc, seqOf);
    const latencies: number[] = [];
    // The split: stored → commit observed (ingest, etcd, watch) and → import updated (snapshot update).
    const toCommit: number[] = [];
    const toUpdate: number[] = [];
    let firstPublish = Infinity;
    let lastDone = -Infinity;
    for (const p of all) {
      const at = storedAt.get(p.index);
      if (at === undefined || p.doneAt === undefined)
        throw new Error(`churned endpoint ${p.newIp} has no publish or update time`);
      latencies.push(p.doneAt - at);
      toCommit.push((p.committedAt ?? p.doneAt) - at);
      toUpdate.push(p.doneAt - (p.committedAt ?? p.doneAt));
      firstPublish = Math.min(firstPublish, at);
      lastDone = Math.max(lastDone, p.doneAt);
    }
    if (opts.record !== undefined) {
      const n = await recordMeshHistory(
        infra.etcd.endpoint,
        opts.record,
        { bench: 'services', measuredAfter: churnAfterRevision, measuredEndpoints: all.length },
        { signal },
      );
      log(`recorded ${n} etcd revisions into ${opts.record}`);
    }
    const finalImports = cache.services.derived.imports;
    const churnS = (lastDone - firstPublish) / 1000;
    const stat = (xs: number[], p: number): number => round(percentile(xs, p), 2);
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    return {
      figures: {
        import_p50_ms: round(percentile(latencies, 50)),
        import_p99_ms: round(percentile(latencies, 99)),
        import_max_ms: round(Math.max(...latencies)),
        import_commit_p50_ms: round(percentile(toCommit, 50)),
        import_commit_p99_ms: round(percentile(toCommit, 99)),
        import_snapshot_p50_ms: round(percentile(toUpdate, 50)),
        import_snapshot_p99_ms: round(percentile(toUpdate, 99)),
        initial_converge_ms: initialMs,
        churn_endpoints_per_s: round(all.length / churnS),
        churn_change_sets_per_s: round(workload.churn.length / churnS),
        offered_endpoints_per_s: rate,
        churned_endpoints: all.length,
        churn_change_sets: workload.churn.length,
        churn_mesh_revisions: churnRevisions,
        services: shape.services,
        imports: finalImports.length,
        complete_imports: finalImports.filter((i) => complete(i.endpoints)).length,
        pods: workload.pods,
        snapshot_update_p50_ms: stat(timings.snapshot.churn, 50),
        snapshot_update_p99_ms: stat(timings.snapshot.churn, 99),
        services_update_p50_ms: stat(timings.services.churn, 50),
        services_update_p99_ms: stat(timings.services.churn, 99),
        services_update_calls: timings.services.churn.length,
        services_update_share: round(
          sum(timings.services.churn) / Math.max(1e-9, sum(timings.snapshot.churn)),
          3,
        ),
        services_update_initial_max_ms: round(Math.max(0, ...timings.services.initial)),
        cpu_controlplane_s: round(cpuAfter.cpu - cpuBefore.cpu, 2),
        cpu_etcd_s: round(cpuAfter.etcd - cpuBefore.etcd, 2),
        runqueue_wait_controlplane_s: round(cpuAfter.wait - cpuBefore.wait, 2),
        churn_s: round(churnS, 2),
        machine_load_1m: round(loadBefore, 2),
        last_revision_lag_ms: lastRevisionAt > 0 ? lastDone - lastRevisionAt : 0,
      },
      shape: {
        ...shape,
        pods: workload.pods,
        churnChangeSets: workload.churn.length,
        rate,
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

/** Change set index → when the stream stored it (Unix ms), read back from the stream. */
async function storedTimes(
  nc: NatsConnection,
  seqOf: ReadonlyMap<number, number>,
): Promise<Map<number, number>> {
  const jsm = await nc.jetstreamManager();
  const out = new Map<number, number>();
  for (const [index, seq] of seqOf) {
    const m = await jsm.streams.getMessage(EVENTS_STREAM, { seq });
    out.set(index, parseNanoTimestamp(m.timestamp));
  }
  return out;
}

/** The runner's entry: parses its options, prints figures (JSON on the last line with --json). */
export async function servicesBench(json: boolean, argv: readonly string[]): Promise<void> {
  const at = argv.indexOf('--record');
  const record = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && (record === undefined || record.startsWith('--')))
    throw new Error('--record needs a file name');
  const numeric = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 2)] : argv;
  const { services, rate, seed, timeout } = numericOptions(numeric, [
    'services',
    'rate',
    'seed',
    'timeout',
  ]);
  const interrupt = interruptSignal();
  try {
    const result = await runServicesBench({
      ...(services !== undefined ? { services: Math.round(services) } : {}),
      ...(rate !== undefined ? { rate } : {}),
      ...(seed !== undefined ? { seed: Math.round(seed) } : {}),
      ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      ...(record !== undefined ? { record } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
    });
    const f = result.figures;
    const s = result.shape;
    const lines = [
      `services: ${s.services} services exported from ${s.clusters} clusters, ` +
        `${s.endpointsPerService} endpoints each per cluster (${s.pods} pods; seed ${s.seed})`,
      `  initial convergence          ${f.initial_converge_ms} ms (first publish → all ${f.imports} imports complete)`,
      `  churn                        ${f.churned_endpoints} endpoints in ${f.churn_change_sets} change sets of ${s.podsPerChangeSet}, ` +
        `offered ${f.offered_endpoints_per_s} endpoints/s`,
      `  import updated p50 / p99 / max ${f.import_p50_ms} / ${f.import_p99_ms} / ${f.import_max_ms} ms (change set stored → import updated)`,
      `  of which stored → commit observed p50 / p99 ${f.import_commit_p50_ms} / ${f.import_commit_p99_ms} ms, ` +
        `commit observed → import updated p50 / p99 ${f.import_snapshot_p50_ms} / ${f.import_snapshot_p99_ms} ms`,
      `  achieved                     ${f.churn_endpoints_per_s} endpoints/s, ${f.churn_change_sets_per_s} change sets/s, ` +
        `${f.churn_mesh_revisions} mesh revisions in ${f.churn_s} s`,
      `  snapshot update per etcd rev p50 / p99 ${f.snapshot_update_p50_ms} / ${f.snapshot_update_p99_ms} ms; ` +
        `of which ServiceImport derivation p50 / p99 ${f.services_update_p50_ms} / ${f.services_update_p99_ms} ms ` +
        `(${round(f.services_update_share! * 100)}% of snapshot update time, ${f.services_update_calls} calls)`,
      `  CPU during churn: control plane + benchmark ${f.cpu_controlplane_s} s ` +
        `(waited for a CPU ${f.runqueue_wait_controlplane_s} s), etcd ${f.cpu_etcd_s} s ` +
        `(machine load average ${f.machine_load_1m} before the churn, 2 cores)`,
    ];
    // With --json the JSON line is the only stdout; people still see the figures on stderr.
    (json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
    if (json)
      process.stdout.write(`${JSON.stringify({ bench: 'services', figures: result.figures })}\n`);
  } finally {
    interrupt.dispose();
  }
}
