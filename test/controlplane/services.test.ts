// ServiceExports -> ServiceImports through the real pipeline: change sets on
// JetStream, commits in etcd, the control plane's derivation, the admin API
// and the services resource nodes receive.
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  silentLogger,
  type ChangeSetEvent,
  type ClusterSpec,
  type MeshObject,
  type SourceHealthEvent,
} from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import {
  MeshAdminClient,
  StatusRequest,
  TYPE_SERVICE,
  type ListServicesResponse,
  type StatusResponse,
} from '../../proto/index.js';
import { useInfra, waitFor } from '../harness/index.js';
import { RawAgent } from './raw-agent.js';

const spec = (name: string, id: number): ClusterSpec => ({
  name,
  id,
  nodes: [`${name}-1`],
  podCIDR: `10.${id}.0.0/16`,
});
const clusters = { a: spec('a', 1), b: spec('b', 2), c: spec('c', 3) };

function objects(
  c: ClusterSpec,
  opts: { port?: number; export?: boolean; namespace?: boolean; headless?: boolean } = {},
): MeshObject[] {
  const out: MeshObject[] = [];
  if (opts.namespace !== false)
    out.push({ kind: 'Namespace', cluster: c.name, namespace: '', name: 'shop', labels: {} });
  if (opts.export !== false) {
    out.push({
      kind: 'Service',
      cluster: c.name,
      namespace: 'shop',
      name: 'cart',
      labels: {},
      type: 'ClusterIP',
      headless: opts.headless ?? false,
      selector: { app: 'cart' },
      ports: [{ name: 'http', port: opts.port ?? 80, protocol: 'TCP', targetPort: 8080 }],
      sessionAffinity: 'None',
    });
    out.push({
      kind: 'ServiceExport',
      cluster: c.name,
      namespace: 'shop',
      name: 'cart',
      labels: {},
    });
    out.push({
      kind: 'Pod',
      cluster: c.name,
      namespace: 'shop',
      name: 'cart-1',
      labels: { app: 'cart' },
      ips: [`10.${c.id}.0.10`],
      node: `${c.name}-1`,
      serviceAccount: 'default',
      ports: [],
      ready: true,
      hostNetwork: false,
    });
  }
  return out;
}

describe('ServiceExport / ServiceImport across clusters', () => {
  const infra = useInfra();
  let cp: ControlPlane;
  let nc: NatsConnection;
  let admin: MeshAdminClient;
  const call = <T>(fn: (cb: (err: grpc.ServiceError | null, res: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
  const services = () => call<ListServicesResponse>((cb) => admin.listServices({}, cb));
  const status = () => call<StatusResponse>((cb) => admin.status(StatusRequest.create(), cb));
  const publish = async (c: ClusterSpec, upserts: MeshObject[], full = true): Promise<void> => {
    const ev: ChangeSetEvent = {
      apiVersion: 'meshplane/v1',
      cluster: c,
      full,
      upserts,
      deletes: [],
      origin: 'test',
    };
    await nc.jetstream().publish(`meshplane.events.${c.name}`, JSON.stringify(ev));
  };
  const until = <T>(
    what: string,
    fn: () => Promise<T | undefined>,
    timeoutMs = 30_000,
  ): Promise<T> => waitFor(what, fn, { timeoutMs });
  const start = async (): Promise<void> => {
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: silentLogger(),
      sourceLeaseMs: 2_000,
    });
    const { address } = await cp.start();
    admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
  };
  // Health keeps a cluster's lease; only the clusters listed here "report".
  let reporting = new Set(['a', 'b', 'c']);
  let heartbeat: NodeJS.Timeout;

  beforeAll(async () => {
    nc = await connect({ servers: infra.nats.url });
    heartbeat = setInterval(() => {
      for (const c of reporting) {
        const h: SourceHealthEvent = {
          apiVersion: 'meshplane/v1',
          cluster: c,
          origin: 'test',
          at: Date.now(),
          lastError: '',
        };
        nc.publish(`meshplane.health.${c}`, JSON.stringify(h));
      }
    }, 200);
    await start();
    for (const c of Object.values(clusters))
      await call((cb) => admin.joinCluster({ name: c.name, id: c.id }, cb));
  });
  afterAll(async () => {
    clearInterval(heartbeat);
    admin?.close();
    await cp?.stop();
    await nc?.close();
  });

  it('an export from one cluster is imported into every cluster with the namespace, with a clusterset IP', async () => {
    await publish(clusters.a, objects(clusters.a));
    await publish(clusters.b, objects(clusters.b, { export: false }));
    await publish(clusters.c, objects(clusters.c, { export: false, namespace: false }));
    const s = await until('import', async () => {
      const r = await services();
      return r.imports.length === 1 && r.imports[0]!.importedInto.length === 2 ? r : undefined;
    });
    const i = s.imports[0]!;
    expect(i).toMatchObject({
      namespace: 'shop',
      name: 'cart',
      type: 'ClusterSetIP',
      clusters: ['a'],
      importedInto: ['a', 'b'],
    });
    expect(i.ips[0]).toMatch(/^100\.64\.\d+\.\d+$/);
    expect(i.endpoints).toEqual([
      {
        cluster: 'a',
        addresses: ['10.1.0.10'],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    ]);
  });

  it('nodes of importing clusters receive the import as a services resource; others do not', async () => {
    const inB = new RawAgent(cp.address, 'b', 'b-1');
    const inC = new RawAgent(cp.address, 'c', 'c-1');
    try {
      await inB.nextRevision();
      await inC.nextRevision();
      expect(
        [...inB.held.values()].filter((r) => r.typeUrl === TYPE_SERVICE).map((r) => r.name),
      ).toEqual(['service/shop/cart']);
      expect([...inC.held.values()].filter((r) => r.typeUrl === TYPE_SERVICE)).toEqual([]);
    } finally {
      inB.close();
      inC.close();
    }
  });

  it('exports from three clusters: port conflict, oldest wins, the same conditions seen through any replica view', async () => {
    await publish(clusters.b, objects(clusters.b, { port: 81 }));
    await publish(clusters.c, objects(clusters.c, { headless: true }));
    const s = await until('three exports', async () => {
      const r = await services();
      return r.imports[0]?.clusters.length === 3 ? r : undefined;
    });
    const conflict = (c: string) =>
      s.exports.find((e) => e.cluster === c)!.conditions.find((x) => x.type === 'Conflict')!;
    expect(s.imports[0]!.type).toBe('ClusterSetIP'); // a's export was recorded first
    expect(s.imports[0]!.ports).toEqual([{ name: 'http', port: 80, protocol: 'TCP' }]);
    expect(conflict('b')).toMatchObject({ status: 'True', reason: 'PortConflict' });
    expect(conflict('c')).toMatchObject({ status: 'True', reason: 'TypeConflict' });
    // b's http port differs: b serves no endpoint port for it.
    expect(s.imports[0]!.endpoints.find((e) => e.cluster === 'b')?.ports ?? []).toEqual([]);
  });

  it('a control plane restart keeps the clusterset IP and the oldest export; a resync does not reset recorded times', async () => {
    const before = await services();
    await publish(clusters.a, objects(clusters.a)); // a full resync of a
    admin.close();
    await cp.stop();
    await start();
    const after = await until('state after restart', async () => {
      const r = await services();
      return r.imports[0]?.clusters.length === 3 ? r : undefined;
    });
    expect(after.imports[0]!.ips).toEqual(before.imports[0]!.ips);
    expect(after.exports.map((e) => [e.cluster, e.createdAt])).toEqual(
      before.exports.map((e) => [e.cluster, e.createdAt]),
    );
    expect(after.imports[0]!.type).toBe('ClusterSetIP');
  });

  it('a cluster silent beyond its lease loses its endpoints; they return when it reports again', async () => {
    reporting = new Set(['a', 'c']);
    await until(
      'b stale',
      async () => {
        const r = await services();
        return r.imports[0]!.endpoints.some((e) => e.cluster === 'b') ? undefined : r;
      },
      20_000,
    );
    // Fail-static: b's endpoints stay in the ipcache.
    expect((await status()).clusters.find((c) => c.name === 'b')!.endpoints).toBe(1);
    reporting = new Set(['a', 'b', 'c']);
    await until(
      'b back',
      async () => {
        const r = await services();
        return r.imports[0]!.endpoints.some((e) => e.cluster === 'b') ? r : undefined;
      },
      20_000,
    );
  });

  it('a cluster that leaves loses its exports everywhere; deleting the last export deletes the import', async () => {
    await call((cb) => admin.removeCluster({ name: 'c' }, cb));
    await until('c gone', async () => {
      const r = await services();
      return r.imports[0]!.clusters.includes('c') ? undefined : r;
    });
    await publish(clusters.b, objects(clusters.b, { export: false }));
    await publish(clusters.a, objects(clusters.a, { export: false }));
    await until('import gone', async () => {
      const r = await services();
      return r.imports.length === 0 ? r : undefined;
    });
  });
});
