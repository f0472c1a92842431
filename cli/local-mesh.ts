import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedCluster } from '../clusters/src/index.js';
import { MeshError } from '../common/index.js';
import type { Testbed } from '../hosts/index.js';
import { startInfra, type Infra } from '../launcher/index.js';
import { fetchStatus, joinCluster } from './admin-client.js';
import { tlsDirOf } from './admin-tls.js';
import { startComponent, type Component } from './child-process.js';
import { meshTlsArgs, removeMeshTls, writeUpTls } from './mesh-tls.js';
import { removeMeshNatsCredentials, writeMeshNatsCredentials } from './nats-credentials.js';
import { removeMeshState, writeMeshState, type MeshState } from './state-dir.js';
import { statusJson } from './status-json.js';

/** The agent arguments of a node on the eBPF datapath of a testbed: its run id and node namespace. */
export function ebpfAgentArgs(bed: Testbed): (cluster: string, node: string) => string[] {
  return (cluster, node) => [
    '--datapath',
    'ebpf',
    '--run-id',
    bed.runId,
    '--netns',
    bed.node(cluster, node).netns,
  ];
}

/**
 * What stop() removes from the state dir: `all` of it (a temporary dir, as
 * `meshctl lab` and the tests use); `runtime` — mesh.json, data, NATS
 * credentials and certificates, keeping the logs (`meshctl up`); `state` —
 * mesh.json only, keeping data and logs (`meshctl up --keep`).
 */
export type StateDirCleanup = 'all' | 'runtime' | 'state';

export interface LocalMeshOptions {
  clusters: readonly LoadedCluster[];
  /** state dir of this mesh (owned by the caller; stop() removes what `cleanup` says) */
  stateDir: string;
  /** the agents' datapath, as recorded in mesh.json (their arguments come from agentArgs) */
  datapath: 'ebpf' | 'emulated';
  /** extra arguments for the agent of one node (datapath, run id, namespace) */
  agentArgs(cluster: string, node: string): string[];
  /** `--nodes N` for every source: each cluster's nodes are `<cluster>-1..N` */
  nodesPerCluster?: number;
  /** plain-text gRPC, no certificates (local experiments only) */
  insecure?: boolean;
  /** the control plane and every agent serve Prometheus metrics on a loopback port */
  metrics?: boolean;
  /** 'all' unless given */
  cleanup?: StateDirCleanup;
  /** more to record in mesh.json (e.g. the test hosts of `up --datapath ebpf`) */
  state?: Pick<MeshState, 'testbed'>;
  signal?: AbortSignal;
}

/**
 * The whole mesh as child processes, for `meshctl up`, `meshctl lab` and the
 * datapath tests: etcd, NATS (one user per process, each source may publish
 * only its own cluster's subjects), the control plane, one source per cluster
 * and one agent per node, over mTLS with a fresh mesh CA unless `insecure`.
 * Membership is explicit: every cluster is joined before its source starts.
 * stop() takes everything down in reverse order (agents, which keep their
 * datapath; sources; the control plane; etcd and NATS last) and removes
 * what `cleanup` says.
 */
export class LocalMesh {
  #stopping: Promise<void> | undefined;

  private constructor(
    private readonly opts: LocalMeshOptions,
    private readonly tiers: Component[][],
    private readonly agents: Map<string, Component>,
    private readonly startAgent: (cluster: string, node: string) => Promise<Component>,
    private readonly infra: Infra | undefined,
    /** the control plane's `ready` line: address, dashboard, metrics */
    readonly controlPlane: Component | undefined,
  ) {}

  get stateDir(): string {
    return this.opts.stateDir;
  }

  /** The control plane's gRPC address (discovery and admin). */
  get address(): string {
    const address = this.controlPlane?.ready.address;
    return typeof address === 'string' ? address : '';
  }

  get etcd(): string {
    return this.infra?.etcd.endpoint ?? '';
  }

  get nats(): string {
    return this.infra?.nats.url ?? '';
  }

  get logs(): string {
    return join(this.opts.stateDir, 'logs');
  }

  static async start(opts: LocalMeshOptions): Promise<LocalMesh> {
    const { stateDir, signal } = opts;
    const so = signal ? { signal } : {};
    const logs = join(stateDir, 'logs');
    const dataDir = join(stateDir, 'data');
    await mkdir(logs, { recursive: true });
    await mkdir(dataDir, { recursive: true });
    const tiers: Component[][] = [];
    const agents = new Map<string, Component>();
    let infra: Infra | undefined;
    let cp: Component | undefined;
    const notStarted = (): Promise<Component> => Promise.reject(new Error('not started'));
    try {
      const nats = await writeMeshNatsCredentials(
        join(stateDir, 'nats'),
        opts.clusters.map((c) => c.spec.name),
        so,
      );
      const nodes = opts.clusters.flatMap((c) =>
        c.spec.nodes.map((n) => ({ cluster: c.spec.name, node: n })),
      );
      // A mesh CA and one certificate per process; each gets only its own key's path.
      const tls = await writeUpTls(tlsDirOf(stateDir), nodes, {
        insecure: opts.insecure ?? false,
        ...so,
      });
      infra = await startInfra({
        baseDir: dataDir,
        keepData: opts.cleanup === 'state',
        natsAuthorization: nats.authorization,
        ...so,
      });
      const running = infra;
      const metricsArgs = opts.metrics ? ['--metrics-listen', '127.0.0.1:0'] : [];
      cp = await startComponent(
        'controlplane',
        'controlplane/main.ts',
        [
          '--etcd',
          running.etcd.endpoint,
          '--nats',
          running.nats.url,
          '--nats-creds',
          nats.controlPlaneFile,
          ...metricsArgs,
          ...meshTlsArgs(tls === 'insecure' ? 'insecure' : tls.controlPlane),
        ],
        { logFile: join(logs, 'controlplane.log'), ...so },
      );
      tiers.push([cp]);
      const control = cp;
      const address = String(control.ready.address);
      const state = (metrics?: MeshState['metrics']): MeshState => ({
        apiVersion: 'meshplane/v1',
        pid: process.pid,
        startedAt: new Date().toISOString(),
        controlPlane: address,
        etcd: running.etcd.endpoint,
        nats: running.nats.url,
        datapath: opts.datapath,
        clusters: opts.clusters.map((c) => ({
          name: c.spec.name,
          id: c.spec.id,
          nodes: c.spec.nodes,
        })),
        logs,
        ...(typeof control.ready.dashboard === 'string' && control.ready.dashboard
          ? { dashboard: control.ready.dashboard }
          : {}),
        tls: tls === 'insecure' ? 'insecure' : tls.admin,
        ...(metrics ? { metrics } : {}),
        ...opts.state,
      });
      // Other commands find the mesh (and its admin certificate) from here on.
      await writeMeshState(stateDir, state());
      for (const c of opts.clusters)
        await joinCluster({ address, stateDir }, c.spec.name, c.spec.id);
      tiers.push(
        await Promise.all(
          opts.clusters.map((c) =>
            startComponent(
              `source-${c.spec.name}`,
              'clusters/src/main.ts',
              [
                '--dir',
                c.dir,
                '--nats',
                running.nats.url,
                '--nats-creds',
                nats.sourceFiles.get(c.spec.name)!,
                ...(opts.nodesPerCluster ? ['--nodes', String(opts.nodesPerCluster)] : []),
              ],
              { logFile: join(logs, `source-${c.spec.name}.log`), ...so },
            ),
          ),
        ),
      );
      const startAgent = async (cluster: string, node: string): Promise<Component> => {
        const agent = await startComponent(
          `agent-${cluster}-${node}`,
          'nodeagent/main.ts',
          [
            '--server',
            address,
            '--cluster',
            cluster,
            '--node',
            node,
            ...opts.agentArgs(cluster, node),
            ...metricsArgs,
            ...meshTlsArgs(tls === 'insecure' ? 'insecure' : tls.agent(cluster, node)),
          ],
          { logFile: join(logs, `agent-${cluster}-${node}.log`) },
        );
        agents.set(`${cluster}/${node}`, agent);
        return agent;
      };
      const started = await Promise.all(nodes.map((n) => startAgent(n.cluster, n.node)));
      tiers.push(started);
      if (opts.metrics)
        await writeMeshState(
          stateDir,
          state({
            controlPlane: String(control.ready.metrics),
            agents: Object.fromEntries(
              started.map((c, i) => [
                `${nodes[i]!.cluster}/${nodes[i]!.node}`,
                String(c.ready.metrics),
              ]),
            ),
          }),
        );
      return new LocalMesh(opts, tiers, agents, startAgent, infra, cp);
    } catch (err) {
      await new LocalMesh(opts, tiers, agents, notStarted, infra, cp).stop();
      throw err;
    }
  }

  /** The agent process of a node (the latest one after a restart). */
  agent(cluster: string, node: string): Component {
    const a = this.agents.get(`${cluster}/${node}`);
    if (a === undefined) throw new MeshError('NOT_FOUND', `no agent for ${cluster}/${node}`);
    return a;
  }

  /** Every agent process, in node order (the latest one of a node after a restart). */
  allAgents(): Component[] {
    return [...this.agents.values()];
  }

  /** Starts a node's agent again (after it was killed); resolves when it has applied a revision. */
  async restartAgent(cluster: string, node: string): Promise<Component> {
    const agent = await this.startAgent(cluster, node);
    this.tiers[this.tiers.length - 1]!.push(agent);
    return agent;
  }

  /** Resolves with the first process of the mesh that exits (unless stop() was called). */
  firstExit(): Promise<{ name: string; code: number | null }> {
    return Promise.race(
      this.tiers.flat().map((c) => c.exited.then((code) => ({ name: c.name, code }))),
    );
  }

  /**
   * Resolves once every node is in-sync and the control plane holds
   * `endpoints` endpoints; throws TIMEOUT naming the nodes that are not.
   */
  async waitConverged(
    endpoints: number,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<number> {
    const end = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      opts.signal?.throwIfAborted();
      const s = statusJson(
        await fetchStatus({ address: this.address, stateDir: this.stateDir }),
      ) as {
        revision: number;
        clusters: { name: string; endpoints: number; nodes: { name: string; state: string }[] }[];
      };
      const held = s.clusters.reduce((a, c) => a + c.endpoints, 0);
      const behind = s.clusters.flatMap((c) =>
        c.nodes.filter((n) => n.state !== 'in-sync').map((n) => `${c.name}/${n.name} ${n.state}`),
      );
      if (held === endpoints && behind.length === 0 && s.revision > 0) return s.revision;
      if (Date.now() > end)
        throw new MeshError(
          'TIMEOUT',
          `the mesh did not converge: ${held}/${endpoints} endpoints; not in sync: ${behind.join(', ') || 'none'}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops every process in reverse order and removes what `cleanup` says. Idempotent. */
  stop(): Promise<void> {
    return (this.#stopping ??= (async () => {
      for (const tier of [...this.tiers].reverse()) await Promise.all(tier.map((c) => c.stop()));
      this.tiers.length = 0;
      await this.infra?.stop();
      const dir = this.opts.stateDir;
      switch (this.opts.cleanup ?? 'all') {
        case 'all':
          await removeMeshNatsCredentials(join(dir, 'nats'));
          await removeMeshTls(tlsDirOf(dir));
          await rm(dir, { recursive: true, force: true });
          break;
        case 'runtime':
          await removeMeshState(dir);
          await rm(join(dir, 'data'), { recursive: true, force: true });
          await removeMeshNatsCredentials(join(dir, 'nats'));
          await removeMeshTls(tlsDirOf(dir));
          break;
        case 'state':
          await removeMeshState(dir);
          break;
      }
    })());
  }
}
