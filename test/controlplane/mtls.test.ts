// mTLS between the control plane and its clients, over real gRPC with real
// certificates: a node's snapshot goes only to that node's certificate, the
// admin API only to an admin certificate, and nothing without a mesh certificate.
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type ChangeSetEvent, type ClusterSpec } from '../../common/index.js';
import {
  clientTransport,
  readTlsMaterial,
  type ClientTransport,
  writeMeshTls,
  type MeshTls,
  type TlsFiles,
  type TlsMaterial,
} from '../../common/tls/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { MeshAdminClient, StatusRequest, type StatusResponse } from '../../proto/index.js';
import { RawAgent } from './raw-agent.js';
import { tempDir, useInfra, type TempDir } from '../harness/index.js';

const eu: ClusterSpec = { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2'], podCIDR: '10.1.0.0/16' };

describe('mTLS on the control plane', () => {
  const infra = useInfra();
  let work: TempDir;
  let tls: MeshTls;
  let foreign: MeshTls;
  let cp: ControlPlane;
  let nc: NatsConnection;
  const agents: RawAgent[] = [];
  const clients: grpc.Client[] = [];

  const material = (files: TlsFiles): Promise<TlsMaterial> => readTlsMaterial(files);
  const agentCreds = async (cluster: string, node: string, from = tls) =>
    clientTransport(await material(from.agents.get(`${cluster}/${node}`)!));
  const adminCreds = async () => clientTransport(await material(tls.admin));
  const agent = (cluster: string, node: string, t: ClientTransport) => {
    const a = new RawAgent(cp.address, cluster, node, {
      credentials: t.credentials,
      channelOptions: t.options,
    });
    agents.push(a);
    return a;
  };
  const status = (t: ClientTransport): Promise<StatusResponse> => {
    const admin = new MeshAdminClient(cp.address, t.credentials, t.options);
    clients.push(admin);
    return new Promise((resolve, reject) =>
      admin.status(
        StatusRequest.create(),
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  };

  beforeAll(async () => {
    work = await tempDir('mtls-');
    const agentsOfEu = eu.nodes.map((node) => ({ cluster: 'eu', node }));
    tls = await writeMeshTls(join(work.path, 'tls'), { agents: agentsOfEu, adminUser: 'ops' });
    // Same identities, another CA: what an attacker's own CA would issue.
    foreign = await writeMeshTls(join(work.path, 'foreign'), {
      agents: agentsOfEu,
      adminUser: 'ops',
    });
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      tls: await material(tls.controlPlane),
      log: silentLogger(),
    });
    await cp.start();
    const t = await adminCreds();
    const admin = new MeshAdminClient(cp.address, t.credentials, t.options);
    clients.push(admin);
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    nc = await connect({ servers: infra.nats.url });
    const event: ChangeSetEvent = {
      apiVersion: 'meshplane/v1',
      cluster: eu,
      full: true,
      upserts: [
        {
          kind: 'Namespace',
          cluster: 'eu',
          namespace: '',
          name: 'billing',
          labels: { 'kubernetes.io/metadata.name': 'billing' },
        },
        ...eu.nodes.map((node, i) => ({
          kind: 'Pod' as const,
          cluster: 'eu',
          namespace: 'billing',
          name: `pod-${node}`,
          labels: { app: node },
          ips: [`10.1.0.${10 + i}`],
          node,
          serviceAccount: 'default',
          ports: [],
          ready: true,
          hostNetwork: false,
        })),
      ],
      deletes: [],
      origin: 'test',
    };
    await nc.jetstream().publish('meshplane.events.eu', JSON.stringify(event));
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    for (const c of clients) c.close();
    await nc?.close();
    await cp?.stop();
    await work?.cleanup();
  });

  it('serves a node its snapshot over its own certificate', async () => {
    const a = agent('eu', 'eu-1', await agentCreds('eu', 'eu-1'));
    const parts = await a.nextRevision();
    expect(parts.at(-1)?.revisionComplete).toBe(true);
    const names = parts.flatMap((p) => p.resources.map((r) => r.name));
    expect(names.some((n) => n.includes('pod-eu-1'))).toBe(true);
    expect(names.some((n) => n.includes('pod-eu-2'))).toBe(false);
  });

  it("an agent holding node A's certificate cannot obtain node B's snapshot", async () => {
    const thief = agent('eu', 'eu-2', await agentCreds('eu', 'eu-1'));
    await expect(thief.nextRevision()).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details:
        'certificate spiffe://meshplane/cluster/eu/node/eu-1 may not fetch the snapshot of node eu/eu-2',
    });
    expect(thief.received).toEqual([]);
    // Nor may the admin certificate stand in for a node.
    const admin = agent('eu', 'eu-2', await adminCreds());
    await expect(admin.nextRevision()).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringMatching(/^certificate spiffe:\/\/meshplane\/admin\/ops may not fetch/),
    });
  });

  it('a client without a mesh certificate cannot connect', async () => {
    const ca = (await material(tls.admin)).ca;
    const { options } = await adminCreds();
    for (const t of [
      clientTransport('insecure'), // plain text against a TLS port
      { credentials: grpc.credentials.createSsl(ca), options }, // TLS, but no client certificate
      await agentCreds('eu', 'eu-1', foreign), // a certificate of another CA
    ]) {
      const a = agent('eu', 'eu-1', t);
      await expect(a.nextRevision()).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      expect(a.received).toEqual([]);
      await expect(status(t)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    }
  });

  it("an agent's certificate cannot call the admin API; the admin certificate can", async () => {
    await expect(status(await agentCreds('eu', 'eu-2'))).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringContaining(
        'certificate spiffe://meshplane/cluster/eu/node/eu-2 may not call /meshplane.v1.MeshAdmin/Status',
      ),
    });
    const s = await status(await adminCreds());
    expect(s.clusters.map((c) => c.name)).toEqual(['eu']);
  });
});
