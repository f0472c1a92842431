// A cluster source restarts, with pods removed while the control plane was
// down: its full republish removes the stale endpoints (stale endpoints
// outliving a restart was a real bug in Submariner and Cilium). Real etcd,
// NATS and the real manifest source.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManifestSource } from '../../clusters/src/index.js';
import { silentLogger } from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { MeshAdminClient, StatusRequest, type StatusResponse } from '../../proto/index.js';
import { tempDir, useInfra, waitFor, type TempDir } from '../harness/index.js';

const podYaml = (name: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}\nspec: {nodeName: eu-1, containers: [{name: c, image: i}]}\n`;

describe('source restart with removals made while the control plane was down', () => {
  const infra = useInfra();
  let dir: TempDir;
  let nc: NatsConnection;

  const startCp = async (): Promise<{ cp: ControlPlane; admin: MeshAdminClient }> => {
    const cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: silentLogger(),
    });
    const { address } = await cp.start();
    return { cp, admin: new MeshAdminClient(address, grpc.credentials.createInsecure()) };
  };
  const endpoints = (admin: MeshAdminClient): Promise<number> =>
    new Promise((resolve, reject) =>
      admin.status(StatusRequest.create(), (e, r: StatusResponse) =>
        e ? reject(e) : resolve(r.clusters[0]?.endpoints ?? -1),
      ),
    );
  const until = (
    what: string,
    pred: () => Promise<boolean>,
    timeoutMs = 60_000,
  ): Promise<boolean> => waitFor(what, pred, { timeoutMs, intervalMs: 100 });

  beforeAll(async () => {
    dir = await tempDir('resync-');
    nc = await connect({ servers: infra.nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await dir?.cleanup();
  });

  it('the full republish after the restart removes what the folder no longer has', async () => {
    await writeFile(join(dir.path, 'cluster.yaml'), 'name: eu\nid: 1\nnodes: [eu-1]\n');
    await writeFile(
      join(dir.path, 'ns.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n',
    );
    for (const p of ['a', 'b', 'c']) await writeFile(join(dir.path, `${p}.yaml`), podYaml(p));

    let { cp, admin } = await startCp();
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    let source = new ManifestSource({ dir: dir.path, nc, logger: silentLogger() });
    await source.start();
    await until('3 endpoints', async () => (await endpoints(admin)) === 3);

    // The control plane goes down; the source stops; two pods go away meanwhile.
    admin.close();
    await cp.stop();
    await source.stop();
    await rm(join(dir.path, 'a.yaml'));
    await rm(join(dir.path, 'b.yaml'));

    source = new ManifestSource({ dir: dir.path, nc, logger: silentLogger() });
    expect((await source.start()).status).toBe('published');
    ({ cp, admin } = await startCp());
    try {
      await until('only c left', async () => (await endpoints(admin)) === 1);
    } finally {
      await source.stop();
      admin.close();
      await cp.stop();
    }
  });
});
