// Node agents as real processes against a control plane on real etcd, NATS
// and gRPC: capacity NACKs shown in status, SIGSTOP/SIGCONT getting the
// coalesced newest state, and a control plane restart after which agents
// resume with what they hold (only differences are sent).
// ~30 s: agents reconnect with backoff after the control plane restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  silentLogger,
  type ChangeSetEvent,
  type MeshObject,
  type PodObject,
} from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { MeshAdminClient, StatusRequest, type StatusResponse } from '../../proto/index.js';
import { useInfra } from '../harness/index.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const eu = { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2', 'eu-3'], podCIDR: '10.1.0.0/16' };
let nextIp = 10;
const pod = (name: string, node: string): PodObject => ({
  kind: 'Pod',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: { app: name.replace(/-\d+$/, '') },
  ips: [`10.1.0.${nextIp++}`],
  node,
  serviceAccount: 'default',
  ports: [],
  ready: true,
  hostNetwork: false,
});

interface Agent {
  node: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
}

describe('node agents (processes)', () => {
  const infra = useInfra();
  let cp: ControlPlane;
  let listen = '127.0.0.1:0';
  let nc: NatsConnection;
  let admin: MeshAdminClient;
  const agents = new Map<string, Agent>();

  const startCp = async (): Promise<void> => {
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen,
      log: silentLogger(),
    });
    const { address } = await cp.start();
    listen = address;
    admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
  };
  const status = (): Promise<StatusResponse> =>
    new Promise((resolve, reject) =>
      admin.status(StatusRequest.create(), (e, r) => (e ? reject(e) : resolve(r))),
    );
  const node = (s: StatusResponse, n: string) =>
    s.clusters[0]?.nodes.find((x) => x.name === n) ?? {
      state: 'unknown',
      ackedRevision: 0,
      syncedRevision: 0,
      lagMs: 0,
      sinceUnixMs: 0,
      error: '',
    };
  async function until(
    what: string,
    pred: (s: StatusResponse) => boolean,
    timeoutMs = 60_000,
  ): Promise<StatusResponse> {
    const end = Date.now() + timeoutMs;
    let last: StatusResponse | undefined;
    while (Date.now() < end) {
      last = await status().catch(() => undefined);
      if (last && pred(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last?.clusters[0]?.nodes)}`);
  }
  const publish = async (upserts: MeshObject[]): Promise<void> => {
    const ev: ChangeSetEvent = {
      apiVersion: 'meshplane/v1',
      cluster: eu,
      full: false,
      upserts,
      deletes: [],
      origin: 'test',
    };
    await nc.jetstream().publish('meshplane.events.eu', JSON.stringify(ev));
  };
  const startAgent = (n: string, extra: string[] = []): void => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        `${ROOT}nodeagent/main.ts`,
        '--insecure',
        '--server',
        listen,
        '--cluster',
        'eu',
        '--node',
        n,
        ...extra,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const agent: Agent = { node: n, child, logs: [] };
    createInterface({ input: child.stderr }).on('line', (l) => {
      try {
        agent.logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not JSON
      }
    });
    agents.set(n, agent);
  };
  const applied = (n: string) => agents.get(n)!.logs.filter((l) => l.msg === 'revision applied');

  beforeAll(async () => {
    await startCp();
    nc = await connect({ servers: infra.nats.url });
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    await publish([
      { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
      pod('web-1', 'eu-1'),
      pod('web-2', 'eu-1'),
      pod('api-1', 'eu-2'),
      pod('db-1', 'eu-3'),
      pod('db-2', 'eu-3'),
    ]);
    startAgent('eu-1');
    startAgent('eu-2');
    startAgent('eu-3', ['--capacity-endpoints', '1']);
  }, 120_000);
  afterAll(async () => {
    for (const a of agents.values()) {
      a.child.kill('SIGCONT');
      a.child.kill('SIGKILL');
    }
    admin?.close();
    await nc?.close();
    await cp?.stop();
  });

  it('an agent whose datapath is too small NACKs, keeps its old state, and status shows why', async () => {
    const s = await until(
      'eu-1, eu-2 in-sync and eu-3 nacked',
      (st) =>
        node(st, 'eu-1').state === 'in-sync' &&
        node(st, 'eu-2').state === 'in-sync' &&
        node(st, 'eu-3').state === 'nacked',
    );
    expect(node(s, 'eu-3').error).toMatch(/endpoint/i);
    expect(node(s, 'eu-3').ackedRevision).toBe(0);
  });

  it('a stopped agent is pending with its age, and after SIGCONT gets the newest state, not a backlog', async () => {
    const eu1 = agents.get('eu-1')!;
    eu1.child.kill('SIGSTOP');
    const before = applied('eu-1').length;
    for (let i = 0; i < 5; i++) {
      await publish([pod(`web-${10 + i}`, 'eu-1')]);
      await new Promise((r) => setTimeout(r, 150));
    }
    const pending = await until(
      'eu-1 pending, eu-2 in-sync at the latest',
      (st) =>
        node(st, 'eu-1').state === 'pending' &&
        node(st, 'eu-1').lagMs > 300 &&
        node(st, 'eu-2').syncedRevision === st.revision,
    );
    expect(node(pending, 'eu-1').sinceUnixMs).toBeGreaterThan(0);
    eu1.child.kill('SIGCONT');
    const s = await until(
      'eu-1 in-sync again',
      (st) =>
        node(st, 'eu-1').state === 'in-sync' && node(st, 'eu-1').ackedRevision === st.revision,
    );
    // At most the revision that was in flight when it stopped, then the newest: never five.
    expect(applied('eu-1').length - before).toBeLessThanOrEqual(2);
    expect(node(s, 'eu-1').syncedRevision).toBe(s.revision);
  });

  it('after a control plane restart agents resume with what they hold: only differences are sent', async () => {
    const marks = new Map([...agents.keys()].map((n) => [n, applied(n).length]));
    admin.close();
    await cp.stop();
    await startCp();
    await until(
      'eu-1 and eu-2 in-sync after the restart',
      (st) =>
        node(st, 'eu-1').state === 'in-sync' &&
        node(st, 'eu-2').state === 'in-sync' &&
        node(st, 'eu-1').ackedRevision > 0,
    );
    for (const n of ['eu-1', 'eu-2']) {
      const after = applied(n).slice(marks.get(n));
      expect(after.length, `${n} applied a revision after reconnecting`).toBeGreaterThan(0);
      expect(after[0]!.changed, `${n} was sent nothing it already held`).toBe(0);
    }
  });
});
