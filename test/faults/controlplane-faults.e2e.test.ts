// Failures of the control plane, etcd and NATS, with real processes: the
// control plane runs as its own process (controlplane/main.ts) so SIGKILL and
// SIGSTOP are the real thing. Change sets are published the way a cluster
// source publishes them (JetStream, subject meshplane.events.<cluster>).
// ~20 s: it waits out a control plane restart (lease expiry) and two pauses.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeSetEvent, ClusterSpec, PodObject } from '../../common/index.js';
import { MeshAdminClient } from '../../proto/index.js';
import { useInfra, waitFor } from '../harness/index.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const eu: ClusterSpec = { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2'], podCIDR: '10.1.0.0/16' };

function pod(i: number): PodObject {
  return {
    kind: 'Pod',
    cluster: 'eu',
    namespace: 'burst',
    name: `p-${i}`,
    labels: { app: `app-${i % 37}` },
    ips: [`10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`],
    node: i % 2 === 0 ? 'eu-1' : 'eu-2',
    serviceAccount: 'default',
    ports: [],
    ready: true,
    hostNetwork: false,
  };
}
const change = (upserts: ChangeSetEvent['upserts'], full = false): ChangeSetEvent => ({
  apiVersion: 'meshplane/v1',
  cluster: eu,
  full,
  upserts,
  deletes: [],
  origin: 'test',
});

describe('control plane faults', () => {
  const infra = useInfra();
  let etcd: Etcd3;
  let nc: NatsConnection;
  const children: ChildProcess[] = [];

  async function startControlPlane(): Promise<{ child: ChildProcess; address: string }> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        `${ROOT}controlplane/main.ts`,
        '--etcd',
        infra.etcd.endpoint,
        '--nats',
        infra.nats.url,
        // plain text: this test is about crashes, test/tls about who may connect
        '--insecure',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    children.push(child);
    const address = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (l) => {
        const m = JSON.parse(l) as { event?: string; address: string };
        if (m.event === 'ready') resolve(m.address);
      });
      child.once('exit', (code) => reject(new Error(`control plane exited ${String(code)}`)));
    });
    return { child, address };
  }
  const kill = async (child: ChildProcess, signal: NodeJS.Signals): Promise<void> => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  };
  const storedPods = async (): Promise<Record<string, string>> =>
    etcd.getAll().prefix('/meshplane/mesh/clusters/eu/objects/Pod/').strings();
  const until = (
    what: string,
    pred: () => Promise<boolean>,
    timeoutMs = 60_000,
  ): Promise<boolean> => waitFor(what, pred, { timeoutMs, intervalMs: 100 });

  beforeAll(async () => {
    etcd = new Etcd3({ hosts: infra.etcd.endpoint });
    nc = await connect({ servers: infra.nats.url });
    const { address } = await startControlPlane();
    const admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    await nc
      .jetstream()
      .publish(
        'meshplane.events.eu',
        JSON.stringify(
          change(
            [{ kind: 'Namespace', cluster: 'eu', namespace: '', name: 'burst', labels: {} }],
            true,
          ),
        ),
      );
  }, 120_000);
  afterEach(() => {
    for (const c of children.splice(0))
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  afterAll(async () => {
    await nc?.close();
    etcd?.close();
  });

  it('SIGKILL in the middle of a burst: after restart etcd holds exactly what the source published', async () => {
    const js = nc.jetstream();
    // The source keeps publishing through the crash and the restart.
    let published = 0;
    let stopAt = Number.POSITIVE_INFINITY;
    const publishing = (async () => {
      while (published < stopAt) {
        await js.publish('meshplane.events.eu', JSON.stringify(change([pod(published)])));
        published += 1;
      }
    })();
    await until(
      'part of the burst committed',
      async () => Object.keys(await storedPods()).length >= 40,
    );
    await kill(children[0]!, 'SIGKILL');
    const atKill = published;
    stopAt = published + 200;
    await publishing;
    const total = published;
    expect(total).toBeGreaterThan(atKill); // the crash happened mid-burst
    expect(Object.keys(await storedPods()).length).toBeLessThan(total);

    await startControlPlane();
    await until(
      'the whole burst committed',
      async () => Object.keys(await storedPods()).length === total,
    );
    const pods = await storedPods();
    for (let i = 0; i < total; i++) {
      const stored = JSON.parse(
        pods[`/meshplane/mesh/clusters/eu/objects/Pod/burst/p-${i}`]!,
      ) as PodObject & { identity: number };
      expect(stored.ips).toEqual(pod(i).ips);
      expect(stored.identity >>> 16).toBe(1);
    }
    // One identity per distinct label set (37 apps), none minted twice by the replay.
    const identities = await etcd
      .getAll()
      .prefix('/meshplane/mesh/clusters/eu/identities/by-id/')
      .keys();
    expect(identities).toHaveLength(37);
    const seq = JSON.parse(
      (await etcd.get('/meshplane/mesh/clusters/eu/source-seq').string())!,
    ) as { sequence: number };
    const info = await (await nc.jetstreamManager()).streams.info('MESHPLANE_EVENTS');
    expect(seq.sequence).toBe(info.state.last_seq);
  }, 120_000);

  it('etcd unavailable for a while: change sets wait, then all are committed, none lost', async () => {
    await startControlPlane();
    const before = Object.keys(await storedPods()).length;
    const etcdPid = infra.etcd.pid;
    process.kill(etcdPid, 'SIGSTOP');
    try {
      const js = nc.jetstream();
      for (let i = 1000; i < 1020; i++)
        await js.publish('meshplane.events.eu', JSON.stringify(change([pod(i)])));
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      process.kill(etcdPid, 'SIGCONT');
    }
    await until(
      'the 20 change sets committed',
      async () => Object.keys(await storedPods()).length === before + 20,
    );
  }, 120_000);

  it('NATS unavailable for a while: the consumer resumes and catches up', async () => {
    await startControlPlane();
    const before = Object.keys(await storedPods()).length;
    const publisher = await connect({ servers: infra.nats.url });
    const natsPid = infra.nats.pid;
    process.kill(natsPid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 3000));
    process.kill(natsPid, 'SIGCONT');
    const js = publisher.jetstream();
    for (let i = 2000; i < 2010; i++)
      await js.publish('meshplane.events.eu', JSON.stringify(change([pod(i)])));
    await publisher.close();
    await until(
      'the 10 change sets committed',
      async () => Object.keys(await storedPods()).length === before + 10,
    );
  }, 120_000);
});
