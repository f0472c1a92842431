// Policies through the real pipeline: a CiliumNetworkPolicy published as a
// change set is compiled into the selected endpoint's resource only, and
// its removal reverts it. Real etcd, NATS, gRPC; a raw wire-level agent.
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeResource,
  silentLogger,
  type ChangeSetEvent,
  type MeshObject,
  type PodObject,
} from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import {
  Direction,
  MeshAdminClient,
  TYPE_ENDPOINT,
  Verdict,
  type EndpointPolicy,
  type ListPoliciesResponse,
} from '../../proto/index.js';
import { useInfra } from '../harness/index.js';
import { RawAgent } from './raw-agent.js';

const eu = { name: 'eu', id: 1, nodes: ['eu-1'], podCIDR: '10.1.0.0/16' };
const pod = (name: string, ip: string): PodObject => ({
  kind: 'Pod',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: { app: name },
  ips: [ip],
  node: 'eu-1',
  serviceAccount: 'default',
  ports: [],
  ready: true,
  hostNetwork: false,
});
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
        toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }],
      },
    ],
  },
};

describe('policy changes reach the selected endpoints only', () => {
  const infra = useInfra();
  let cp: ControlPlane;
  let nc: NatsConnection;
  let admin: MeshAdminClient;
  let agent: RawAgent;
  const publish = async (
    upserts: MeshObject[],
    deletes: ChangeSetEvent['deletes'] = [],
  ): Promise<void> => {
    const ev: ChangeSetEvent = {
      apiVersion: 'meshplane/v1',
      cluster: eu,
      full: false,
      upserts,
      deletes,
      origin: 'test',
    };
    await nc.jetstream().publish('meshplane.events.eu', JSON.stringify(ev));
  };
  const endpoint = (name: string): EndpointPolicy | undefined => {
    const r = agent.held.get(`${TYPE_ENDPOINT}|endpoint/eu/shop/${name}`);
    if (!r) return undefined;
    const v = decodeResource(r.typeUrl, r.payload);
    return v.typeUrl === TYPE_ENDPOINT ? v.value : undefined;
  };

  beforeAll(async () => {
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: silentLogger(),
    });
    const { address } = await cp.start();
    nc = await connect({ servers: infra.nats.url });
    admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    await publish([
      { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
      pod('frontend', '10.1.0.1'),
      pod('backend', '10.1.0.2'),
      pod('legacy', '10.1.0.3'),
    ]);
    agent = new RawAgent(address, 'eu', 'eu-1');
    for (;;) {
      agent.ack(await agent.nextRevision());
      if (endpoint('legacy')) break;
    }
  });
  afterAll(async () => {
    agent?.close();
    admin?.close();
    await nc?.close();
    await cp?.stop();
  });

  it('adding the policy sends one changed resource: backend, now ingress-enforced, allowing frontend on 8080/TCP', async () => {
    expect(endpoint('backend')).toMatchObject({ ingressEnforced: false, entries: [] });
    await publish([policy]);
    const parts = await agent.nextRevision();
    agent.ack(parts);
    expect(parts.flatMap((p) => p.resources.map((r) => r.name))).toEqual([
      'endpoint/eu/shop/backend',
    ]);
    const backend = endpoint('backend')!;
    const frontend = endpoint('frontend')!;
    expect(backend.ingressEnforced).toBe(true);
    expect(backend.entries).toContainEqual({
      direction: Direction.DIRECTION_INGRESS,
      identity: frontend.identity,
      protocol: 6,
      portLow: 8080,
      portHigh: 8080,
      verdict: Verdict.VERDICT_ALLOW,
    });
    expect(backend.entries.some((e) => e.identity === endpoint('legacy')!.identity)).toBe(false);
    const policies = await new Promise<ListPoliciesResponse>((resolve, reject) =>
      admin.listPolicies({}, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(policies.policies.map((p) => [p.name, p.selected])).toEqual([
      ['frontend-to-backend', ['eu/shop/backend']],
    ]);
  });

  it('removing the policy reverts backend to unenforced', async () => {
    await publish(
      [],
      [{ kind: 'CiliumNetworkPolicy', namespace: 'shop', name: 'frontend-to-backend' }],
    );
    const parts = await agent.nextRevision();
    agent.ack(parts);
    expect(parts.flatMap((p) => p.resources.map((r) => r.name))).toEqual([
      'endpoint/eu/shop/backend',
    ]);
    expect(endpoint('backend')).toMatchObject({ ingressEnforced: false, entries: [] });
  });
});
