// `meshctl apply` / `delete` / `history` below the CLI: a control plane with
// mTLS, two manifest-backed cluster sources on their folders, real etcd, NATS
// and gRPC. A change set is validated as a whole, written into the cluster's
// folder (which stays the source of truth), committed in one transaction per
// cluster, and audited with the admin certificate that applied it.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManifestSource } from '../../clusters/src/index.js';
import { silentLogger } from '../../common/index.js';
import {
  clientTransport,
  readTlsMaterial,
  writeMeshTls,
  type ClientTransport,
  type MeshTls,
} from '../../common/tls/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { keyLayout } from '../../controlplane/store/index.js';
import {
  MeshAdminClient,
  MeshChangeSetsClient,
  type ApplyRequest,
  type ApplyResponse,
  type ListHistoryResponse,
  type ListPoliciesResponse,
} from '../../proto/index.js';
import { tempDir, useInfra, waitFor, type TempDir } from '../harness/index.js';

const POLICY = `# who may reach the ledger
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ledger-ingress
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: ledger
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: web
      toPorts:
        - ports:
            - port: "8443"
              protocol: TCP
`;

const MESH_WIDE = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: no-world-egress
spec:
  endpointSelector: {}
  egressDeny:
    - toEntities: [world]
`;

// Two problems the change set has on its own (a port out of range) and one
// only the cluster's folder shows (a namespace it does not have).
const INVALID = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: broken
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: ledger
  ingress:
    - toPorts:
        - ports:
            - port: "70000"
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: stray
  namespace: nowhere
spec:
  podSelector: {}
`;

const pod = (name: string): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels:
    app: ${name}
spec:
  containers: [{ name: app }]
`;

async function writeClusterFolder(dir: string, name: string, id: number): Promise<void> {
  await mkdir(join(dir, 'shop'), { recursive: true });
  await writeFile(join(dir, 'cluster.yaml'), `name: ${name}\nid: ${id}\nnodes: [${name}-1]\n`);
  await writeFile(
    join(dir, 'namespaces.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
  );
  await writeFile(join(dir, 'shop', 'pods.yaml'), `${pod('ledger')}---\n${pod('web')}`);
}

async function folderDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const path = join(d, name);
      if ((await stat(path)).isDirectory()) await walk(path);
      else hash.update(`${path}\0${await readFile(path, 'utf8')}\0`);
    }
  };
  await walk(dir);
  return hash.digest('hex');
}

describe('change sets through the admin API', () => {
  const infra = useInfra();
  let work: TempDir;
  let tls: MeshTls;
  let foreign: MeshTls;
  let cp: ControlPlane;
  let etcd: Etcd3;
  let sourceNc: NatsConnection;
  const sources: ManifestSource[] = [];
  const clients: grpc.Client[] = [];
  const layout = keyLayout();
  let admin: ClientTransport;
  const folder = (cluster: string): string => join(work.path, 'mesh', cluster);

  const changeSets = (t: ClientTransport = admin): MeshChangeSetsClient => {
    const c = new MeshChangeSetsClient(cp.address, t.credentials, t.options);
    clients.push(c);
    return c;
  };
  const apply = (req: Partial<ApplyRequest>, t?: ClientTransport): Promise<ApplyResponse> =>
    new Promise((resolve, reject) =>
      changeSets(t).apply(
        { clusters: [], allClusters: false, files: [], delete: false, timeoutMs: 30_000, ...req },
        new grpc.Metadata(),
        { deadline: Date.now() + 40_000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  const history = (): Promise<ListHistoryResponse> =>
    new Promise((resolve, reject) =>
      changeSets().listHistory({ cluster: '', limit: 10 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  const adminClient = (): MeshAdminClient => {
    const c = new MeshAdminClient(cp.address, admin.credentials, admin.options);
    clients.push(c);
    return c;
  };
  const policies = (): Promise<ListPoliciesResponse> =>
    new Promise((resolve, reject) =>
      adminClient().listPolicies({}, (err, res) => (err ? reject(err) : resolve(res))),
    );
  const committedAt = async (cluster: string): Promise<number> => {
    const res = await etcd.get(layout.sourceSequence(cluster)).exec();
    return Number(res.kvs[0]?.mod_revision ?? 0);
  };

  beforeAll(async () => {
    work = await tempDir('apply-');
    tls = await writeMeshTls(join(work.path, 'tls'), {
      agents: [{ cluster: 'eu', node: 'eu-1' }],
      adminUser: 'ops',
    });
    foreign = await writeMeshTls(join(work.path, 'foreign'), { agents: [], adminUser: 'ops' });
    admin = clientTransport(await readTlsMaterial(tls.admin));
    for (const [name, id] of [
      ['eu', 1],
      ['us', 2],
    ] as const) {
      await writeClusterFolder(folder(name), name, id);
    }
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      tls: await readTlsMaterial(tls.controlPlane),
      log: silentLogger(),
    });
    await cp.start();
    etcd = new Etcd3({ hosts: infra.etcd.endpoint });
    for (const [name, id] of [
      ['eu', 1],
      ['us', 2],
      // A member whose source never connects.
      ['ap', 3],
    ] as const) {
      await new Promise((resolve, reject) =>
        adminClient().joinCluster({ name, id }, (err, res) => (err ? reject(err) : resolve(res))),
      );
    }
    sourceNc = await connect({ servers: infra.nats.url });
    for (const name of ['eu', 'us']) {
      const source = new ManifestSource({
        dir: folder(name),
        nc: sourceNc,
        logger: silentLogger(),
      });
      sources.push(source);
      expect(await source.start()).toMatchObject({ status: 'published', cluster: name });
    }
    await waitFor('both clusters committed', async () =>
      (await committedAt('eu')) > 0 && (await committedAt('us')) > 0 ? true : undefined,
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of sources) await s.stop();
    await sourceNc?.close();
    etcd?.close();
    await cp?.stop();
    await work?.cleanup();
  }, 60_000);

  it('applies a policy to one cluster: written into its folder, committed, at the returned revision', async () => {
    const r = await apply({ clusters: ['eu'], files: [{ path: 'ledger.yaml', text: POLICY }] });
    expect(r.errors).toEqual([]);
    expect(r.objects).toEqual([
      {
        cluster: 'eu',
        kind: 'CiliumNetworkPolicy',
        namespace: 'shop',
        name: 'ledger-ingress',
        action: 'created',
      },
    ]);
    // The revision is the etcd revision of the transaction that committed the change set.
    expect(r.revision).toBeGreaterThan(0);
    expect(r.revision).toBe(await committedAt('eu'));
    expect(r.clusters).toEqual([
      { cluster: 'eu', revision: r.revision, sequence: expect.any(Number), unchanged: false },
    ]);
    // The folder holds the user's document, comment included.
    const written = await readFile(
      join(folder('eu'), 'shop', 'ciliumnetworkpolicy-ledger-ingress.yaml'),
      'utf8',
    );
    expect(written).toBe(POLICY);
    const seen = await waitFor('the policy in `policies`', async () => {
      const p = await policies();
      const found = p.policies.find((x) => x.name === 'ledger-ingress');
      return p.revision >= r.revision && found ? found : undefined;
    });
    expect(seen).toMatchObject({ cluster: 'eu', kind: 'CiliumNetworkPolicy', namespace: 'shop' });
    expect(seen.selected).toEqual(['eu/shop/ledger']);

    // Applying the same again changes nothing and returns the revision in force.
    const again = await apply({ clusters: ['eu'], files: [{ path: 'ledger.yaml', text: POLICY }] });
    expect(again.objects.map((o) => o.action)).toEqual(['unchanged']);
    expect(again.revision).toBeGreaterThanOrEqual(r.revision);
    expect(await committedAt('eu')).toBe(r.revision);
  });

  it('installs a mesh-wide policy into every member cluster with --all-clusters', async () => {
    // `ap` has no source: the dry run finds it before anything is written anywhere.
    await expect(
      apply({ allClusters: true, files: [{ path: 'mesh-wide.yaml', text: MESH_WIDE }] }),
    ).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining('the source of cluster ap is not connected'),
    });
    expect(await readdir(folder('eu'))).not.toContain(
      'ciliumclusterwidenetworkpolicy-no-world-egress.yaml',
    );
    await new Promise((resolve, reject) =>
      adminClient().removeCluster({ name: 'ap' }, (err, res) => (err ? reject(err) : resolve(res))),
    );

    const r = await apply({
      allClusters: true,
      files: [{ path: 'mesh-wide.yaml', text: MESH_WIDE }],
    });
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => `${o.cluster}:${o.name}:${o.action}`)).toEqual([
      'eu:no-world-egress:created',
      'us:no-world-egress:created',
    ]);
    const byCluster = Object.fromEntries(r.clusters.map((c) => [c.cluster, c.revision]));
    expect(byCluster).toEqual({ eu: await committedAt('eu'), us: await committedAt('us') });
    expect(r.revision).toBe(Math.max(byCluster.eu!, byCluster.us!));
    for (const c of ['eu', 'us']) {
      expect(
        await readFile(
          join(folder(c), 'ciliumclusterwidenetworkpolicy-no-world-egress.yaml'),
          'utf8',
        ),
      ).toBe(MESH_WIDE);
    }
    await waitFor('the mesh-wide policy in both clusters', async () => {
      const p = await policies();
      const clusters = p.policies.filter((x) => x.name === 'no-world-egress').map((x) => x.cluster);
      return clusters.sort().join(',') === 'eu,us' ? true : undefined;
    });
  });

  it('refuses an invalid change set with every error, writing and committing nothing', async () => {
    const before = { eu: await folderDigest(folder('eu')), us: await folderDigest(folder('us')) };
    const revisions = { eu: await committedAt('eu'), us: await committedAt('us') };
    const r = await apply({ allClusters: true, files: [{ path: 'bad.yaml', text: INVALID }] });
    expect(r.revision).toBe(0);
    expect(r.errors).toEqual([
      {
        cluster: '',
        file: 'bad.yaml',
        document: 0,
        object: 'CiliumNetworkPolicy/shop/broken',
        field: 'spec.ingress[0].toPorts[0].ports[0].port',
        message: expect.stringContaining('70000'),
      },
      ...['eu', 'us'].map((cluster) => ({
        cluster,
        file: 'bad.yaml',
        document: 1,
        object: 'NetworkPolicy/nowhere/stray',
        field: 'metadata.namespace',
        message: `namespace "nowhere" has no Namespace document in cluster ${cluster}`,
      })),
    ]);
    expect({ eu: await folderDigest(folder('eu')), us: await folderDigest(folder('us')) }).toEqual(
      before,
    );
    expect({ eu: await committedAt('eu'), us: await committedAt('us') }).toEqual(revisions);
  });

  it('deletes the objects a file names, from the folder and the mesh', async () => {
    const r = await apply({
      clusters: ['eu'],
      delete: true,
      files: [{ path: 'ledger.yaml', text: POLICY }],
    });
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => `${o.name}:${o.action}`)).toEqual(['ledger-ingress:deleted']);
    expect(r.revision).toBe(await committedAt('eu'));
    expect(await readdir(join(folder('eu'), 'shop'))).toEqual(['pods.yaml']);
    await waitFor('the policy gone from `policies`', async () => {
      const p = await policies();
      return p.revision >= r.revision && !p.policies.some((x) => x.name === 'ledger-ingress')
        ? true
        : undefined;
    });
    // Deleting it again names what is missing.
    const again = await apply({
      clusters: ['eu'],
      delete: true,
      files: [{ path: 'ledger.yaml', text: POLICY }],
    });
    expect(again.errors).toEqual([
      expect.objectContaining({
        file: 'ledger.yaml',
        document: 0,
        object: 'CiliumNetworkPolicy/shop/ledger-ingress',
        message: expect.stringContaining('not found'),
      }),
    ]);
  });

  it('records who applied each change set, when, and at which revision', async () => {
    const { entries } = await history();
    const committed = entries.filter((e) => e.status === 'committed');
    expect(
      committed.map(
        (e) => `${e.action}:${e.objects.map((o) => `${o.cluster}/${o.name}`).join(',')}`,
      ),
    ).toEqual([
      'delete:eu/ledger-ingress',
      'apply:eu/no-world-egress,us/no-world-egress',
      'apply:eu/ledger-ingress',
      'apply:eu/ledger-ingress',
    ]);
    for (const e of entries) expect(e.who).toBe('spiffe://meshplane/admin/ops');
    const [deleted] = committed;
    expect(deleted!.revision).toBe(await committedAt('eu'));
    expect(deleted!.files).toEqual(['ledger.yaml']);
    expect(Date.now() - deleted!.atUnixMs).toBeLessThan(10 * 60_000);
    // Refused attempts are on record too, with why; none of them changed anything.
    const failed = entries.filter((e) => e.status === 'failed');
    expect(failed.map((e) => [e.files, e.error])).toEqual([
      [['ledger.yaml'], expect.stringContaining('not found')],
      [['bad.yaml'], expect.stringContaining('"nowhere" has no Namespace document')],
      [['mesh-wide.yaml'], expect.stringContaining('the source of cluster ap is not connected')],
    ]);
    expect(failed.every((e) => e.revision === 0)).toBe(true);
  });

  it('serves change sets only to an admin certificate of the mesh CA', async () => {
    const before = await folderDigest(folder('eu'));
    const req = { clusters: ['eu'], files: [{ path: 'ledger.yaml', text: POLICY }] };
    // Another CA's admin certificate: the TLS handshake itself fails.
    await expect(
      apply(req, clientTransport(await readTlsMaterial(foreign.admin))),
    ).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    // A node's certificate of this mesh is no operator's.
    await expect(
      apply(req, clientTransport(await readTlsMaterial(tls.agents.get('eu/eu-1')!))),
    ).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringContaining('spiffe://meshplane/cluster/eu/node/eu-1 may not call'),
    });
    expect(await folderDigest(folder('eu'))).toBe(before);
  });
});
