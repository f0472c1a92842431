// Change sets split by kind (`meshplane.events.<cluster>.<kind>`), against
// real etcd and NATS JetStream: a source's multi-kind change set commits as
// one etcd revision, a change set cut short never commits half, a forged
// part refuses its whole change set, and anyone can follow one kind.
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { connect, headers, type NatsConnection } from 'nats';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHANGE_SET_HEADER,
  CHANGE_SET_PART_HEADER,
  eventsSubject,
  silentLogger,
  type ChangeSetEvent,
  type MeshObject,
} from '../../common/index.js';
import { ManifestSource } from '../../clusters/src/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { MeshAdminClient, StatusRequest, type StatusResponse } from '../../proto/index.js';
import { tempDir, useInfra, waitFor } from '../harness/index.js';

const infra = useInfra();
let cp: ControlPlane;
let nc: NatsConnection;
let etcd: Etcd3;
let admin: MeshAdminClient;

const eu = { name: 'eu', id: 1, nodes: ['eu-1'], podCIDR: '10.1.0.0/16' };
const objectsPrefix = '/meshplane/mesh/clusters/eu/objects/';

function changeSet(upserts: MeshObject[]): ChangeSetEvent {
  return {
    apiVersion: 'meshplane/v1',
    cluster: eu,
    full: false,
    upserts,
    deletes: [],
    origin: 'test',
  };
}
const namespace = (name: string): MeshObject => ({
  kind: 'Namespace',
  cluster: 'eu',
  namespace: '',
  name,
  labels: { 'kubernetes.io/metadata.name': name },
});
const pod = (name: string, ip: string): MeshObject => ({
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
const service = (name: string): MeshObject => ({
  kind: 'Service',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: {},
  type: 'ClusterIP',
  headless: false,
  selector: { app: name },
  ports: [],
  sessionAffinity: 'None',
});

/** Publishes one part of a change set by hand, as a source (or a broken one) would. */
async function publishPart(
  kind: string,
  ev: ChangeSetEvent,
  changeSet: string,
  part: string,
): Promise<number> {
  const h = headers();
  h.set(CHANGE_SET_HEADER, changeSet);
  h.set(CHANGE_SET_PART_HEADER, part);
  const ack = await nc.jetstream().publish(eventsSubject('eu', kind), JSON.stringify(ev), {
    headers: h,
  });
  return ack.seq;
}

const status = (): Promise<StatusResponse> =>
  new Promise((resolve, reject) =>
    admin.status(StatusRequest.create(), (err, res) => (err ? reject(err) : resolve(res))),
  );

/** The committed source position of eu: its stream sequence and the etcd revision that wrote it. */
async function position(): Promise<{ sequence: number; revision: number } | undefined> {
  const kv = (await etcd.get('/meshplane/mesh/clusters/eu/source-seq').exec()).kvs[0];
  if (!kv) return undefined;
  const { sequence } = JSON.parse(kv.value.toString()) as { sequence: number };
  return { sequence, revision: Number(kv.mod_revision) };
}

/** etcd revision of each stored object of eu, by object key. */
async function objects(): Promise<Map<string, number>> {
  const res = await etcd.getAll().prefix(objectsPrefix).exec();
  return new Map(
    res.kvs.map((kv) => [kv.key.toString().slice(objectsPrefix.length), Number(kv.mod_revision)]),
  );
}

/** A control plane on this file's etcd and NATS, and an admin client of it. */
async function startControlPlane(): Promise<void> {
  cp = new ControlPlane({
    etcdEndpoints: [infra.etcd.endpoint],
    natsUrl: infra.nats.url,
    listen: '127.0.0.1:0',
    log: silentLogger(),
  });
  const { address } = await cp.start();
  admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
}

beforeAll(async () => {
  await startControlPlane();
  nc = await connect({ servers: infra.nats.url });
  etcd = new Etcd3({ hosts: infra.etcd.endpoint });
  for (const [name, id] of [
    ['eu', 1],
    ['us', 2],
  ] as const) {
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name, id }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }
});
afterAll(async () => {
  admin?.close();
  etcd?.close();
  await nc?.close();
  await cp?.stop();
});

describe('change sets split by kind', () => {
  it("commits a source's change set of several kinds, one message per kind, as one etcd revision; a subscriber follows one kind", async () => {
    // Anyone with read access can follow one kind of every cluster.
    const followed: { subject: string; objects: string[] }[] = [];
    const pods = nc.subscribe('meshplane.events.*.Pod', {
      callback: (_err, m) =>
        followed.push({
          subject: m.subject,
          objects: m.json<ChangeSetEvent>().upserts.map((o) => `${o.kind}/${o.name}`),
        }),
    });
    const dir = await tempDir('ingest-parts-');
    const source = new ManifestSource({
      dir: dir.path,
      nc,
      debounceMs: 50,
      logger: silentLogger(),
    });
    try {
      const podYaml = (name: string): string =>
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: shop\n  labels:\n    app: web\n` +
        'spec:\n  containers: [{ name: app }]\n';
      const files: Record<string, string> = {
        'cluster.yaml': 'name: eu\nid: 1\nnodes: [eu-1]\n',
        'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
        'web.yaml': [podYaml('web-1'), podYaml('web-2')].join('---\n'),
        'svc.yaml': [
          'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n' +
            'spec:\n  selector:\n    app: web\n  ports:\n    - { name: http, port: 80, targetPort: 8080 }\n',
          'apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: web\n  namespace: shop\n',
        ].join('---\n'),
      };
      for (const [name, text] of Object.entries(files)) await writeFile(join(dir.path, name), text);
      const started = await source.start();
      expect(started.status).toBe('published');
      const seq = (started as { seq: number }).seq;

      const committed = await waitFor('the change set committed', async () => {
        const p = await position();
        return p && p.sequence === seq ? p : undefined;
      });
      const stored = await objects();
      expect([...stored.keys()].sort()).toEqual([
        'Namespace//shop',
        'Pod/shop/web-1',
        'Pod/shop/web-2',
        'Service/shop/web',
        'ServiceExport/shop/web',
      ]);
      // One transaction: every object and the position written at one etcd revision.
      expect(new Set(stored.values())).toEqual(new Set([committed.revision]));

      await nc.flush();
      expect(followed).toEqual([
        { subject: 'meshplane.events.eu.Pod', objects: ['Pod/web-1', 'Pod/web-2'] },
      ]);
    } finally {
      pods.unsubscribe();
      await source.stop();
      await dir.cleanup();
    }
  });

  it('never commits half of a change set: one cut short is dropped for the next, parts in any order commit together', async () => {
    // x: two parts, only the first ever published (its source gave up and published y).
    await publishPart('Namespace', changeSet([namespace('half')]), 'x', '1/2');
    const ySeq = await publishPart('Pod', changeSet([pod('after-half', '10.1.9.1')]), 'y', '1/1');
    await waitFor('y committed', async () => (await position())?.sequence === ySeq || undefined);
    expect((await objects()).has('Pod/shop/after-half')).toBe(true);
    expect((await objects()).has('Namespace//half')).toBe(false);

    // z: second part first, another cluster's change set in between, then the first.
    await publishPart('Pod', changeSet([pod('z-pod', '10.1.9.2')]), 'z', '2/2');
    const us = {
      ...changeSet([]),
      cluster: { name: 'us', id: 2, nodes: ['us-1'], podCIDR: '10.2.0.0/16' },
    };
    await nc.jetstream().publish(eventsSubject('us', 'Cluster'), JSON.stringify(us));
    await new Promise((r) => setTimeout(r, 300));
    expect((await objects()).has('Pod/shop/z-pod')).toBe(false);
    const zSeq = await publishPart('Namespace', changeSet([namespace('z-ns')]), 'z', '1/2');
    const committed = await waitFor('z committed', async () => {
      const p = await position();
      return p?.sequence === zSeq ? p : undefined;
    });
    const stored = await objects();
    expect(stored.get('Pod/shop/z-pod')).toBe(committed.revision);
    expect(stored.get('Namespace//z-ns')).toBe(committed.revision);
  });

  it('refuses a whole change set when one part is forged (objects of another kind than its subject), writing none of it', async () => {
    const eu0 = (await status()).clusters.find((c) => c.name === 'eu')!.source!;
    const before = await position();
    await publishPart('Pod', changeSet([service('sneaky')]), 'f', '1/2');
    await publishPart('Namespace', changeSet([namespace('sneaky-ns')]), 'f', '2/2');
    const s = await waitFor('both parts refused', async () => {
      const st = await status();
      const src = st.clusters.find((c) => c.name === 'eu')!.source!;
      return src.refusedChangeSets >= eu0.refusedChangeSets + 2 ? src : undefined;
    });
    expect(s.lastError).toContain('a part of its change set was refused');
    // Refused, not retried: the next change set commits, and nothing of f was written.
    const gSeq = await publishPart('Pod', changeSet([pod('good', '10.1.9.3')]), 'g', '1/1');
    await waitFor('g committed', async () => (await position())?.sequence === gSeq || undefined);
    const stored = await objects();
    expect(stored.has('Service/shop/sneaky')).toBe(false);
    expect(stored.has('Namespace//sneaky-ns')).toBe(false);
    expect((await position())!.sequence).toBeGreaterThan(before!.sequence);
  });

  it("refuses a part on a cluster's kind subject whose payload names another cluster", async () => {
    const eu0 = (await status()).clusters.find((c) => c.name === 'eu')!.source!;
    const forged = {
      ...changeSet([]),
      cluster: { name: 'us', id: 2, nodes: ['us-1'], podCIDR: '10.2.0.0/16' },
      upserts: [{ ...pod('forged', '10.2.9.9'), cluster: 'us' }],
    };
    await publishPart('Pod', forged, 'h', '1/1');
    const s = await waitFor('refusal counted', async () => {
      const src = (await status()).clusters.find((c) => c.name === 'eu')!.source!;
      return src.refusedChangeSets > eu0.refusedChangeSets ? src : undefined;
    });
    expect(s.lastError).toContain('published on the subject of cluster eu');
    const us = await etcd.getAll().prefix('/meshplane/mesh/clusters/us/objects/').keys();
    expect(us).toEqual([]);
  });

  it('a change set cut in two by a control plane restart commits whole: the new leader reads again from the positions', async () => {
    await publishPart('Namespace', changeSet([namespace('r-ns')]), 'r', '1/2');
    await new Promise((r) => setTimeout(r, 300));
    admin.close();
    await cp.stop();
    await startControlPlane();
    const seq = await publishPart('Pod', changeSet([pod('r-pod', '10.1.9.4')]), 'r', '2/2');
    const committed = await waitFor('r committed', async () => {
      const p = await position();
      return p?.sequence === seq ? p : undefined;
    });
    const stored = await objects();
    expect(stored.get('Namespace//r-ns')).toBe(committed.revision);
    expect(stored.get('Pod/shop/r-pod')).toBe(committed.revision);
  });
});
