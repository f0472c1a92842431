import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedCluster } from '../clusters/src/index.js';
import { MeshError } from '../common/index.js';
import { startInfra, type Infra } from '../launcher/index.js';
import { fetchStatus, joinCluster } from './admin-client.js';
import { tlsDirOf } from './admin-tls.js';
import { startComponent, type Component } from './child-process.js';
import { meshTlsArgs, removeMeshTls, writeUpTls } from './mesh-tls.js';
import { removeMeshNatsCredentials, writeMeshNatsCredentials } from './nats-credentials.js';
import { writeMeshState } from './state-dir.js';
import { statusJson } from './status-json.js';

export interface LocalMeshOptions {
  clusters: readonly LoadedCluster[];
  /** state dir of this mesh (owned by the caller; its data, credentials and certificates are removed on stop) */
  stateDir: string;
  /** extra arguments for the agent of one node (datapath, run id, namespace) */
  agentArgs(cluster: string, node: string): string[];
  signal?: AbortSignal;
}

/**
 * The whole mesh as child processes, for `meshctl lab` and the datapath
 * tests: etcd, NATS (one user per process), the control plane, one source per
 * cluster and one agent per node, over mTLS with a fresh mesh CA. (`meshctl
 * up` wires the same parts in the foreground with its own reporting.)
 * stop() takes everything down in reverse order and removes the state dir's
 * contents; agents stop without touching their datapath.
 */
export class LocalMesh {
  private constructor(
    readonly address: string,
    readonly stateDir: string,
    private readonly tiers: Component[][],
    private readonly agents: Map<string, Component>,
    private readonly startAgent: (cluster: string, node: string) => Promise<Component>,
    private readonly infra: Infra | undefined,
  ) {}

  static async start(opts: LocalMeshOptions): Promise<LocalMesh> {
    const { stateDir, signal } = opts;
    const logs = join(stateDir, 'logs');
    await mkdir(logs, { recursive: true });
    await mkdir(join(stateDir, 'data'), { recursive: true });
    const tiers: Component[][] = [];
    const agents = new Map<string, Component>();
    let infra: Infra | undefined;
    const partial = (): LocalMesh =>
      new LocalMesh(
        '',
        stateDir,
        tiers,
        agents,
        () => Promise.reject(new Error('not started')),
        infra,
      );
    try {
      const nats = await writeMeshNatsCredentials(
        join(stateDir, 'nats'),
        opts.clusters.map((c) => c.spec.name),
        signal ? { signal } : {},
      );
      const nodes = opts.clusters.flatMap((c) =>
        c.spec.nodes.map((n) => ({ cluster: c.spec.name, node: n })),
      );
      const tls = await writeUpTls(tlsDirOf(stateDir), nodes, {
        insecure: false,
        ...(signal ? { signal } : {}),
      });
      if (tls === 'insecure') throw new MeshError('INTERNAL', 'expected mTLS material');
      infra = await startInfra({
        baseDir: join(stateDir, 'data'),
        natsAuthorization: nats.authorization,
        ...(signal ? { signal } : {}),
      });
      const running = infra;
      const cp = await startComponent(
        'controlplane',
        'controlplane/main.ts',
        [
          '--etcd',
          running.etcd.endpoint,
          '--nats',
          running.nats.url,
          '--nats-creds',
          nats.controlPlaneFile,
          ...meshTlsArgs(tls.controlPlane),
        ],
        { logFile: join(logs, 'controlplane.log'), ...(signal ? { signal } : {}) },
      );
      tiers.push([cp]);
      const address = String(cp.ready.address);
      await writeMeshState(stateDir, {
        apiVersion: 'meshplane/v1',
        pid: process.pid,
        startedAt: new Date().toISOString(),
        controlPlane: address,
        etcd: running.etcd.endpoint,
        nats: running.nats.url,
        datapath: 'ebpf',
        clusters: opts.clusters.map((c) => ({
          name: c.spec.name,
          id: c.spec.id,
          nodes: c.spec.nodes,
        })),
        logs,
        tls: tls.admin,
      });
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
              ],
              { logFile: join(logs, `source-${c.spec.name}.log`), ...(signal ? { signal } : {}) },
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
            ...meshTlsArgs(tls.agent(cluster, node)),
          ],
          { logFile: join(logs, `agent-${cluster}-${node}.log`) },
        );
        agents.set(`${cluster}/${node}`, agent);
        return agent;
      };
      tiers.push(await Promise.all(nodes.map((n) => startAgent(n.cluster, n.node))));
      return new LocalMesh(address, stateDir, tiers, agents, startAgent, infra);
    } catch (err) {
      await partial().stop();
      throw err;
    }
  }

  /** The agent process of a node (the latest one after a restart). */
  agent(cluster: string, node: string): Component {
    const a = this.agents.get(`${cluster}/${node}`);
    if (a === undefined) throw new MeshError('NOT_FOUND', `no agent for ${cluster}/${node}`);
    return a;
  }

  /** Starts a node's agent again (after it was killed); resolves when it has applied a revision. */
  async restartAgent(cluster: string, node: string): Promise<Component> {
    const agent = await this.startAgent(cluster, node);
    this.tiers[this.tiers.length - 1]!.push(agent);
    return agent;
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

  /** Stops every process in reverse order and removes the state dir's contents. Idempotent. */
  async stop(): Promise<void> {
    for (const tier of [...this.tiers].reverse()) await Promise.all(tier.map((c) => c.stop()));
    this.tiers.length = 0;
    await this.infra?.stop();
    await removeMeshNatsCredentials(join(this.stateDir, 'nats'));
    await removeMeshTls(tlsDirOf(this.stateDir));
    await rm(this.stateDir, { recursive: true, force: true });
  }
}
