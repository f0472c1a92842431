import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type { Meter, Tracer } from '@opentelemetry/api';
import { Etcd3 } from 'etcd3';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import {
  MeshError,
  raceAbort,
  SUBJECT_RESYNC_PREFIX,
  systemClock,
  type Clock,
  type Logger,
} from '../common/index.js';
import type { HistogramSet } from '../common/telemetry/index.js';
import { serverCredentials, type TlsMaterial } from '../common/tls/index.js';
import {
  MeshAdminService,
  MeshChangeSetsService,
  MeshFlowsService,
  MeshObserveService,
  type ComponentStatus,
} from '../proto/index.js';
import { adminService, changeSetService } from './admin/index.js';
import { EtcdAuditLog } from './audit/index.js';
import { ChangeSetApplier, natsClusterSources } from './changeset/index.js';
import { INGEST_LEASE_SECONDS, runWhileLeader } from './election/index.js';
import { FlowBuffer, PeerIndex, flowsService, observeService } from './flows/index.js';
import {
  CidrIdentityAllocator,
  IdentityAllocator,
  IdentityGc,
  defaultLabelFilter,
} from './identity/index.js';
import {
  ChangeSetCommitter,
  ClusterMembership,
  EventConsumer,
  SourceRegistry,
  awaitCommitted,
  monitorSourceLeases,
  recordRefusal,
  type SourcePosition,
} from './ingest/index.js';
import { MeshModel } from './model/index.js';
import { parsePolicy, requiredPrefixes } from './policy/index.js';
import { ClustersetIpAllocator } from './services/index.js';
import { SnapshotCache } from './snapshot/index.js';
import { EtcdMeshStore, keyLayout, type KeyLayout } from './store/index.js';
import { MeshSync } from './sync/index.js';
import { adminGuard } from './tls/index.js';
import { Dashboard } from './dashboard/index.js';
import { PropagationTracing, Tracker, registerPropagationMetrics } from './telemetry/index.js';
import {
  XdsServer,
  combineCallbacks,
  discoveryServerOptions,
  glibcFixMmapThreshold,
  glibcMallocTrim,
  type XdsCallbacks,
} from './xds/index.js';

export interface ControlPlaneOptions {
  etcdEndpoints: string[];
  natsUrl: string;
  /** NATS login; absent for a server without authorization (tests) */
  natsAuth?: { user: string; pass: string };
  /** host:port for the gRPC server (discovery + admin); port 0 = any */
  listen: string;
  /**
   * mTLS: the mesh CA, this server's certificate and key. Every client must
   * present a mesh certificate; discovery serves a node only to that node's
   * certificate, the admin API only to admin certificates. 'insecure' (or
   * absent, for in-process tests and benchmarks) is plain text, no checks.
   */
  tls?: TlsMaterial | 'insecure';
  log: Logger;
  clock?: Clock;
  /** etcd key root, default /meshplane */
  keyRoot?: string;
  ipcacheShards?: number;
  /** identities unused this long are collected, and released numbers are not reused sooner (default 15 min) */
  identityGraceMs?: number;
  /** how often the elected replica looks for unused identities (default 30 s) */
  identityGcIntervalMs?: number;
  /** where ServiceImports' clusterset IPs come from (default 100.64.0.0/16) */
  clustersetCidr?: string;
  /** a cluster whose source is silent this long loses its endpoints from every import (default 60 s) */
  sourceLeaseMs?: number;
  /** the ingest election's etcd lease: how long a dead leader holds up ingestion (default 15 s, see INGEST_LEASE_SECONDS) */
  ingestLeaseSeconds?: number;
  /** policy map entries per endpoint on nodes whose agent has not announced its capacity (default 16,384) */
  policyMapCapacity?: number;
  /**
   * OpenTelemetry, built by the composition root and passed in (nothing is
   * global): propagation metrics on `meter` (per-node series only with
   * `perNodeMetrics`), revision/cluster/node spans on `tracer`.
   */
  /**
   * `meter` with `histograms`: the propagation metrics (the per-ACK latency
   * histograms are kept in `histograms`, a MetricProducer the process's
   * metric readers were built with); `tracer`: propagation traces.
   */
  telemetry?: {
    tracer?: Tracer | undefined;
    perNodeMetrics?: boolean;
  } & ({ meter?: undefined } | { meter: Meter; histograms: HistogramSet });
  /** HOST:PORT of the live dashboard's HTTP server (port 0 = any); absent = no dashboard */
  dashboardListen?: string;
  /** recent flows kept for `meshctl observe` (default 10,000) */
  flowBufferSize?: number;
}

export const DEFAULT_CLUSTERSET_CIDR = '100.64.0.0/16';

/**
 * One control plane replica, wired from its parts. `start()` connects to
 * etcd and NATS, loads the mesh, serves gRPC and consumes change sets;
 * `stop()` ends all of it. Stopping is not removing: no mesh state changes.
 */
export class ControlPlane {
  readonly #opts: ControlPlaneOptions;
  readonly #abort = new AbortController();
  readonly #tasks: Promise<void>[] = [];
  #etcd: Etcd3 | undefined;
  #nats: NatsConnection | undefined;
  #server: grpc.Server | undefined;
  #xds: XdsServer | undefined;
  #cache: SnapshotCache | undefined;
  #tracker: Tracker | undefined;
  readonly #closers: (() => void)[] = [];
  #dashboard: Dashboard | undefined;
  #address = '';

  constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
  }

  /**
   * The snapshot state this replica computes (read-only use: benchmarks and
   * embedding observe revisions through `subscribe`). Undefined before start.
   */
  get snapshots(): SnapshotCache | undefined {
    return this.#cache;
  }

  /**
   * The propagation tracker (read-only use: the dashboard, metrics and
   * embedding subscribe to it). Undefined before start.
   */
  get tracker(): Tracker | undefined {
    return this.#tracker;
  }

  get address(): string {
    return this.#address;
  }

  /** http://HOST:PORT/ of the dashboard once started; '' without one */
  get dashboardUrl(): string {
    return this.#dashboard?.url ?? '';
  }

  async start(): Promise<{ address: string }> {
    const { log } = this.#opts;
    const clock = this.#opts.clock ?? systemClock;
    const signal = this.#abort.signal;
    const layout = keyLayout(this.#opts.keyRoot);
    this.#etcd = new Etcd3({ hosts: this.#opts.etcdEndpoints });
    try {
      this.#nats = await connect({
        servers: this.#opts.natsUrl,
        name: 'meshplane-controlplane',
        maxReconnectAttempts: -1,
        ...(this.#opts.natsAuth ?? {}),
      });
    } catch (err) {
      throw new MeshError('UNAVAILABLE', `cannot connect to NATS at ${this.#opts.natsUrl}`, {
        cause: err,
      });
    }
    const model = new MeshModel(layout);
    const cache = new SnapshotCache({
      ...(this.#opts.ipcacheShards ? { ipcacheShards: this.#opts.ipcacheShards } : {}),
      ...(this.#opts.policyMapCapacity ? { policyCapacity: this.#opts.policyMapCapacity } : {}),
    });
    this.#cache = cache;
    const tracker = new Tracker({ clock });
    this.#tracker = tracker;
    const telemetry = this.#opts.telemetry ?? {};
    if (telemetry.meter) {
      const metrics = registerPropagationMetrics(telemetry.meter, tracker, {
        histograms: telemetry.histograms,
        perNode: telemetry.perNodeMetrics ?? false,
      });
      this.#closers.push(() => metrics.close());
    }
    let callbacks: XdsCallbacks = tracker;
    if (telemetry.tracer) {
      const tracing = new PropagationTracing(telemetry.tracer, tracker, clock);
      callbacks = combineCallbacks(tracker, tracing);
      this.#closers.push(() => tracing.close());
    }
    if (this.#opts.dashboardListen !== undefined) {
      // Before anything is pushed, so its latency histograms see every ACK.
      this.#dashboard = new Dashboard({
        tracker,
        clock,
        log: log.child({ part: 'dashboard' }),
        listen: this.#opts.dashboardListen,
      });
      await this.#dashboard.start({ signal });
    }
    cache.subscribe((rev) =>
      tracker.onRevision(
        rev,
        cache.nodes().map((k) => {
          const i = k.indexOf('/');
          return { cluster: k.slice(0, i), node: k.slice(i + 1) };
        }),
      ),
    );
    const sources = new SourceRegistry(clock);
    const sync = new MeshSync(
      new EtcdMeshStore(this.#etcd, layout),
      model,
      cache,
      clock,
      log.child({ part: 'sync' }),
    );
    const tls = this.#opts.tls ?? 'insecure';
    // Process-wide: keeps first-sync buffers out of the heap (see glibcFixMmapThreshold).
    glibcFixMmapThreshold();
    const heapTrim = glibcMallocTrim();
    this.#xds = new XdsServer(cache, callbacks, clock, log.child({ part: 'xds' }), {
      requireNodeCertificate: tls !== 'insecure',
      // Heap freed by a wave of agent handshakes goes back to the OS.
      ...(heapTrim ? { heapTrim } : {}),
    });

    this.#tasks.push(sync.run(signal));
    await raceAbort(sync.ready, signal, () => {
      throw new MeshError('UNAVAILABLE', 'stopped before etcd was read');
    });

    const etcd = this.#etcd;
    const allocator = new IdentityAllocator(this.#etcd, layout, clock, {
      ...(this.#opts.identityGraceMs !== undefined
        ? { reuseGraceMs: this.#opts.identityGraceMs }
        : {}),
    });
    const committer = new ChangeSetCommitter(this.#etcd, layout, defaultLabelFilter(), allocator, {
      cidrs: new CidrIdentityAllocator(this.#etcd, layout),
      serviceIps: new ClustersetIpAllocator(
        this.#etcd,
        layout,
        this.#opts.clustersetCidr ?? DEFAULT_CLUSTERSET_CIDR,
      ),
      clock,
    });
    const consumer: EventConsumer = new EventConsumer(
      this.#nats,
      committer,
      sources,
      log.child({ part: 'ingest' }),
      (epoch): Promise<number> => this.#startAfter(etcd, layout, model, epoch, consumer),
      {
        onRefused: (cluster, sequence, error) =>
          void recordRefusal(etcd, layout, cluster, {
            sequence,
            error,
            at: new Date(clock.now()).toISOString(),
          }).catch((err: unknown) =>
            log.warn('refusal not recorded', { cluster, sequence, error: String(err) }),
          ),
      },
    );
    await consumer.prepare();

    const server = new grpc.Server({
      // Tuned for one long-lived discovery stream per node agent.
      ...discoveryServerOptions(),
      ...(tls === 'insecure'
        ? {}
        : {
            interceptors: [
              adminGuard(
                { ...MeshAdminService, ...MeshChangeSetsService, ...MeshObserveService },
                log.child({ part: 'admin' }),
              ),
            ],
          }),
    });
    server.addService(...this.#xds.service());
    // Flows agents report, named from the mesh state; served to admins (meshctl observe).
    const flows = new FlowBuffer(
      this.#opts.flowBufferSize ? { capacity: this.#opts.flowBufferSize } : {},
    );
    this.#closers.push(() => flows.close());
    server.addService(
      MeshFlowsService,
      flowsService({
        buffer: flows,
        lookup: new PeerIndex(model, () => sync.revision),
        log: log.child({ part: 'flows' }),
        requireNodeCertificate: tls !== 'insecure',
      }),
    );
    server.addService(MeshObserveService, observeService({ buffer: flows }));
    server.addService(
      MeshAdminService,
      adminService({
        model,
        tracker,
        sources,
        clock,
        latest: () => cache.latest,
        observedRevision: () => sync.revision,
        components: () => this.#components(),
        membership: new ClusterMembership(this.#etcd, layout, clock, {
          streamPosition: () => consumer.streamPosition(),
          // The joining caller's trace context in the request's headers: the
          // source republishes with it, so the join's revision is in its trace.
          onJoined: (cluster, traceContext) => {
            const headers = natsHeaders();
            for (const [k, v] of Object.entries(traceContext ?? {})) headers.set(k, v);
            this.#nats?.publish(`${SUBJECT_RESYNC_PREFIX}.${cluster}`, undefined, { headers });
          },
        }),
        etcd: this.#etcd,
        layout,
        cache,
        tracer: telemetry.tracer,
      }),
    );
    const audit = new EtcdAuditLog(this.#etcd, layout);
    server.addService(
      MeshChangeSetsService,
      changeSetService({
        audit,
        applier: new ChangeSetApplier({
          sources: natsClusterSources(this.#nats),
          awaitCommitted: (cluster, sequence, o) =>
            awaitCommitted(etcd, layout, cluster, sequence, o),
          audit,
          members: () => model.clusters().map((c) => c.name),
          latestRevision: () => cache.latest.revision,
          clock,
          newId: randomUUID,
          log: log.child({ part: 'change-sets' }),
        }),
        tracer: telemetry.tracer,
      }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.#opts.listen, serverCredentials(tls), (err, p) =>
        err
          ? reject(
              new MeshError('UNAVAILABLE', `cannot listen on ${this.#opts.listen}`, { cause: err }),
            )
          : resolve(p),
      ),
    );
    this.#server = server;
    const host = this.#opts.listen.slice(0, this.#opts.listen.lastIndexOf(':'));
    this.#address = `${host}:${port}`;

    const gc = new IdentityGc(
      this.#etcd,
      layout,
      {
        revision: () => sync.revision,
        identities: () => model.identities(),
        references: (id) => model.references(id),
        clusters: () => model.clusters(),
        cidrIdentities: () => model.cidrIdentities(),
        cidrPrefixesInUse: () => {
          const prefixes = new Set<string>();
          for (const p of model.policies()) {
            const parsed = parsePolicy(p);
            if (parsed.ok)
              for (const prefix of requiredPrefixes(parsed.value)) prefixes.add(prefix);
          }
          return prefixes;
        },
      },
      clock,
      log.child({ part: 'identity-gc' }),
      {
        ...(this.#opts.identityGraceMs !== undefined
          ? { graceMs: this.#opts.identityGraceMs }
          : {}),
        ...(this.#opts.identityGcIntervalMs !== undefined
          ? { intervalMs: this.#opts.identityGcIntervalMs }
          : {}),
      },
    );
    this.#tasks.push(gc.run(`${this.#address}/${process.pid}`, signal));
    consumer.watchHealth(signal);
    // One replica consumes at a time, so the stream is applied in order.
    this.#tasks.push(
      runWhileLeader(
        this.#etcd.namespace(layout.bookkeeping),
        layout.ingestElection,
        `${this.#address}/${process.pid}`,
        signal,
        log.child({ part: 'ingest' }),
        async (leadership) => {
          await Promise.all([
            consumer.run(leadership),
            monitorSourceLeases(
              etcd,
              layout,
              model,
              sources,
              clock,
              log.child({ part: 'leases' }),
              this.#opts.sourceLeaseMs ?? 60_000,
              leadership,
            ),
          ]);
        },
        // See INGEST_LEASE_SECONDS: kept through CPU starvation; after a crash another replica resumes within it.
        { ttlSeconds: this.#opts.ingestLeaseSeconds ?? INGEST_LEASE_SECONDS },
      ),
    );
    return { address: this.#address };
  }

  /**
   * Where ingestion resumes: after the lowest position any member cluster has
   * committed (replays of later ones are skipped per cluster); from the
   * stream's end when there are no members (nothing before a join counts).
   */
  async #startAfter(
    etcd: Etcd3,
    layout: KeyLayout,
    model: MeshModel,
    epoch: string,
    consumer: EventConsumer,
  ): Promise<number> {
    let lowest = Number.POSITIVE_INFINITY;
    for (const c of model.clusters()) {
      const v = await etcd.get(layout.sourceSequence(c.name)).string();
      const p = v === null ? undefined : (JSON.parse(v) as SourcePosition);
      if (p?.epoch !== epoch) return 0;
      lowest = Math.min(lowest, p.sequence);
    }
    return Number.isFinite(lowest) ? lowest : (await consumer.streamPosition()).sequence;
  }

  #components(): ComponentStatus[] {
    return [
      { name: 'controlplane', state: 'up', address: this.#address, detail: '' },
      { name: 'etcd', state: 'up', address: this.#opts.etcdEndpoints.join(','), detail: '' },
      {
        name: 'nats',
        state: this.#nats && !this.#nats.isClosed() ? 'up' : 'down',
        address: this.#opts.natsUrl,
        detail: '',
      },
    ];
  }

  async stop(): Promise<void> {
    this.#abort.abort(new MeshError('UNAVAILABLE', 'control plane stopping'));
    await this.#dashboard?.stop();
    this.#xds?.close();
    for (const close of this.#closers.splice(0)) close();
    await new Promise<void>((resolve) => {
      if (!this.#server) return resolve();
      this.#server.tryShutdown(() => resolve());
      setTimeout(() => this.#server?.forceShutdown(), 2000).unref();
    });
    await Promise.allSettled(this.#tasks);
    await this.#nats?.close().catch(() => undefined);
    this.#etcd?.close();
  }
}
