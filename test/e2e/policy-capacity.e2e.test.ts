// Per-node policy map capacity: agents announce what their datapath holds per
// endpoint, and the control plane checks each endpoint against its own
// node's capacity. Real etcd, NATS, gRPC, agent processes and meshctl.
// (The NACK of a revision that does not fit the datapath at all is
// agents.e2e.test.ts; here the control plane never sends what does not fit.)
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  silentLogger,
  type ChangeSetEvent,
  type MeshObject,
  type PodObject,
} from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { tempDir, useInfra, waitFor, type TempDir } from '../harness/index.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');
const eu = { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2'], podCIDR: '10.1.0.0/16' };
let nextIp = 10;
const pod = (name: string, app: string, node: string): PodObject => ({
  kind: 'Pod',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: { app },
  ips: [`10.1.0.${nextIp++}`],
  node,
  serviceAccount: 'default',
  ports: [],
  ready: true,
  hostNetwork: false,
});
// One peer identity on four ports: four entries on every backend pod.
const policy: MeshObject = {
  kind: 'CiliumNetworkPolicy',
  cluster: 'eu',
  namespace: 'shop',
  name: 'frontend-to-backend',
  labels: {},
  spec: {
    endpointSelector: { matchLabels: { app: 'backend' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'frontend' } }],
        toPorts: [
          {
            ports: ['8080', '8081', '8082', '8083'].map((port) => ({ port, protocol: 'TCP' })),
          },
        ],
      },
    ],
  },
};

interface EndpointJson {
  name: string;
  node: string;
  enforcement: { ingress: boolean; egress: boolean };
  entries: number;
  capacity: number;
  errors: string[];
}
interface StatusJson {
  revision: number;
  clusters: {
    endpointsWithErrors: number;
    nodes: { name: string; state: string; syncedRevision: number }[];
  }[];
}

describe('policy map capacity announced by each agent', () => {
  const infra = useInfra();
  let cp: ControlPlane;
  let nc: NatsConnection;
  let state: TempDir;
  const agents = new Map<string, ChildProcess>();

  const meshctl = async <T>(...args: string[]): Promise<T> => {
    const { stdout } = await run(process.execPath, [
      MESHCTL,
      ...args,
      '--json',
      '--server',
      cp.address,
      '--state-dir',
      state.path,
    ]);
    return JSON.parse(stdout) as T;
  };
  const endpoints = async (): Promise<Map<string, EndpointJson>> =>
    new Map(
      (await meshctl<{ endpoints: EndpointJson[] }>('endpoints')).endpoints.map((e) => [e.name, e]),
    );
  /** Polls `get` until `ok` holds (meshctl failing meanwhile counts as not yet). */
  const until = <T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> => {
    let last: T | undefined;
    return waitFor(
      what,
      async () => {
        last = await get().catch(() => undefined);
        return last !== undefined && ok(last) ? last : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, detail: () => JSON.stringify(last) },
    );
  };
  const allInSync = (s: StatusJson): boolean =>
    s.clusters[0]?.nodes.length === 2 &&
    s.clusters[0].nodes.every((n) => n.state === 'in-sync' && n.syncedRevision === s.revision);
  const startAgent = (node: string, extra: string[] = []): void => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        `${ROOT}nodeagent/main.ts`,
        '--insecure',
        '--server',
        cp.address,
        '--cluster',
        'eu',
        '--node',
        node,
        ...extra,
      ],
      { stdio: 'ignore' },
    );
    agents.set(node, child);
  };
  const stopAgent = async (node: string): Promise<void> => {
    const child = agents.get(node);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };

  beforeAll(async () => {
    state = await tempDir('capacity-');
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: silentLogger(),
    });
    await cp.start();
    nc = await connect({ servers: infra.nats.url });
    await meshctl('clusters', 'join', '--name', 'eu', '--id', '1');
    const ev: ChangeSetEvent = {
      apiVersion: 'meshplane/v1',
      cluster: eu,
      full: false,
      upserts: [
        { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
        pod('frontend-1', 'frontend', 'eu-1'),
        pod('backend-1', 'backend', 'eu-1'),
        pod('backend-2', 'backend', 'eu-2'),
        policy,
      ],
      deletes: [],
      origin: 'test',
    };
    await nc.jetstream().publish('meshplane.events.eu', JSON.stringify(ev));
    startAgent('eu-1');
    startAgent('eu-2', ['--capacity-policy-entries', '3']);
  }, 120_000);
  afterAll(async () => {
    for (const node of agents.keys()) await stopAgent(node);
    await nc?.close();
    await cp?.stop();
    await state?.cleanup();
  });

  it('an endpoint over its node’s capacity is an error in `meshctl endpoints` and status; the same policy on a default node is not', async () => {
    const status = await until(
      'both nodes in sync',
      () => meshctl<StatusJson>('status'),
      allInSync,
    );
    // eu-2 got what fits (it did not NACK), and status counts the endpoint it could not get.
    expect(status.clusters[0]!.endpointsWithErrors).toBe(1);

    const eps = await endpoints();
    expect(eps.get('backend-2')).toMatchObject({
      node: 'eu-2',
      capacity: 3,
      errors: ['policy map overflow: 4 entries, capacity 3'],
      // Never a silent partial map: a new endpoint that cannot be enforced exactly denies.
      enforcement: { ingress: true, egress: true },
      entries: 0,
    });
    expect(eps.get('backend-1')).toMatchObject({
      node: 'eu-1',
      capacity: 16_384,
      errors: [],
      enforcement: { ingress: true, egress: false },
      entries: 4,
    });
  });

  it('an agent that comes back announcing more room gets the endpoint’s entries and the error clears', async () => {
    await stopAgent('eu-2');
    startAgent('eu-2', ['--capacity-policy-entries', '100']);
    const eps = await until(
      'backend-2 shipped',
      endpoints,
      (m) => m.get('backend-2')?.entries === 4,
    );
    expect(eps.get('backend-2')).toMatchObject({ capacity: 100, errors: [] });
    const status = await until(
      'both nodes in sync',
      () => meshctl<StatusJson>('status'),
      allInSync,
    );
    expect(status.clusters[0]!.endpointsWithErrors).toBe(0);
  });
});
