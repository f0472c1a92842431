// Identity allocation and garbage collection against a real etcd.
// The race test takes ~35 s: 32 allocators in two processes contend on one
// counter by design (every loser re-reads and retries), each try an etcd txn.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshError } from '../../common/index.js';
import {
  CidrIdentityAllocator,
  IdentityAllocator,
  IdentityGc,
  canonicalLabels,
  defaultLabelFilter,
  identityLabels,
  labelsHash,
} from '../../controlplane/identity/index.js';
import { keyLayout } from '../../controlplane/store/index.js';
import { useInfra } from '../harness/index.js';

const run = promisify(execFile);
const layout = keyLayout();
const noCidrs = {
  clusters: () => [],
  cidrIdentities: () => new Map<string, number>(),
  cidrPrefixesInUse: () => new Set<string>(),
};

describe('identity allocation (real etcd)', () => {
  const infra = useInfra();
  let etcd: Etcd3;
  let now = 1_000_000;
  const clock = { now: () => now };
  beforeAll(() => {
    etcd = new Etcd3({ hosts: infra.etcd.endpoint });
  });
  afterAll(() => etcd?.close());

  it('two replica processes racing on 1,000 label sets hand out exactly one number per set, none twice', async () => {
    const worker = new URL('./allocate-worker.ts', import.meta.url).pathname;
    const tsx = import.meta.resolve('tsx');
    const [a, b] = await Promise.all(
      [1, 2].map((seed) =>
        run(
          process.execPath,
          ['--import', tsx, worker, infra.etcd.endpoint, '1000', String(seed)],
          {
            maxBuffer: 16 * 1024 * 1024,
          },
        ),
      ),
    );
    const first = JSON.parse(a!.stdout) as Record<string, number>;
    const second = JSON.parse(b!.stdout) as Record<string, number>;
    expect(Object.keys(first)).toHaveLength(1000);
    expect(second).toEqual(first);
    expect(new Set(Object.values(first)).size).toBe(1000);
    const stored = await etcd
      .getAll()
      .prefix(layout.identityById('race', 0).replace(/0$/, ''))
      .keys();
    expect(stored).toHaveLength(1000);
    for (const id of Object.values(first)) expect(id >>> 16).toBe(9);
  }, 120_000);

  it('two replica processes racing with allocateMany (cached, one transaction per batch) also hand out one number per set, none twice', async () => {
    const worker = new URL('./allocate-worker.ts', import.meta.url).pathname;
    const tsx = import.meta.resolve('tsx');
    const [a, b] = await Promise.all(
      [3, 4].map((seed) =>
        run(
          process.execPath,
          ['--import', tsx, worker, infra.etcd.endpoint, '1000', String(seed), 'many'],
          { maxBuffer: 16 * 1024 * 1024 },
        ),
      ),
    );
    const first = JSON.parse(a!.stdout) as Record<string, number>;
    const second = JSON.parse(b!.stdout) as Record<string, number>;
    expect(Object.keys(first)).toHaveLength(1000);
    expect(second).toEqual(first);
    expect(new Set(Object.values(first)).size).toBe(1000);
    const stored = await etcd
      .getAll()
      .prefix(layout.identityById('race-many', 0).replace(/0$/, ''))
      .keys();
    expect(stored).toHaveLength(1000);
  }, 120_000);

  it('exhausting a cluster range is a clear error, and released numbers are reused only after the grace period', async () => {
    const allocator = new IdentityAllocator(etcd, layout, clock, { reuseGraceMs: 60_000 });
    const cluster = { name: 'tiny', id: 10 };
    await etcd.put(layout.identityNext('tiny')).value('65535');
    const last = await allocator.allocate(cluster, { 'k8s:app': 'last' });
    expect(last.id).toBe((10 << 16) | 65535);
    const err = await allocator
      .allocate(cluster, { 'k8s:app': 'one-more' })
      .catch((e: unknown) => e);
    expect(isMeshError(err, 'IDENTITY_EXHAUSTED')).toBe(true);
    expect((err as Error).message).toContain('cluster tiny (id 10) has used all');

    await etcd.put(layout.identityReleased('tiny', 300)).value(String(now - 10_000));
    expect(
      isMeshError(
        await allocator.allocate(cluster, { 'k8s:app': 'x' }).catch((e: unknown) => e),
        'IDENTITY_EXHAUSTED',
      ),
    ).toBe(true);
    now += 60_000;
    const reused = await allocator.allocate(cluster, { 'k8s:app': 'x' });
    expect(reused.id).toBe((10 << 16) | 300);
    expect(await etcd.get(layout.identityReleased('tiny', 300)).string()).toBeNull();
  });

  it('collects an identity no endpoint holds only after the grace period, and never one in use', async () => {
    const allocator = new IdentityAllocator(etcd, layout, clock);
    const cluster = { name: 'gc', id: 11 };
    const used = await allocator.allocate(cluster, { 'k8s:app': 'used' });
    const unused = await allocator.allocate(cluster, { 'k8s:app': 'unused' });
    const revision = Number((await etcd.get('x').exec()).header.revision);
    const refs = new Map([[used.id, 2]]);
    const view = {
      ...noCidrs,
      revision: () => revision,
      identities: () => [used, unused].map((a) => ({ id: a.id, cluster: 'gc', hash: a.hash })),
      references: (id: number) => refs.get(id) ?? 0,
    };
    const log = { info: () => {}, warn: () => {}, error: () => {}, child: () => log };
    const gc = new IdentityGc(etcd, layout, view, clock, log, { graceMs: 15 * 60_000 });
    expect(await gc.round()).toEqual({ marked: 1, collected: 0 });
    now += 14 * 60_000;
    expect((await gc.round()).collected).toBe(0);
    now += 2 * 60_000;
    expect((await gc.round()).collected).toBe(1);
    expect(await etcd.get(layout.identityById('gc', unused.id)).string()).toBeNull();
    expect(await etcd.get(layout.identityById('gc', used.id)).string()).not.toBeNull();
    // A released number is not handed out again within the grace period.
    const again = await allocator.allocate(cluster, { 'k8s:app': 'unused' });
    expect(again.id).not.toBe(unused.id);
  });

  it('does not collect when a change set of the cluster was committed after its view', async () => {
    const allocator = new IdentityAllocator(etcd, layout, clock);
    const a = await allocator.allocate({ name: 'gc2', id: 12 }, { 'k8s:app': 'a' });
    const revision = Number((await etcd.get('x').exec()).header.revision);
    const view = {
      ...noCidrs,
      revision: () => revision,
      identities: () => [{ id: a.id, cluster: 'gc2', hash: a.hash }],
      references: () => 0,
    };
    const log = { info: () => {}, warn: () => {}, error: () => {}, child: () => log };
    const gc = new IdentityGc(etcd, layout, view, clock, log, { graceMs: 0 });
    await gc.round();
    // A change set lands after the collector's view (it may reference a).
    await etcd.put(layout.sourceSequence('gc2')).value('{"epoch":"e","sequence":1}');
    expect((await gc.round()).collected).toBe(0);
    expect(await etcd.get(layout.identityById('gc2', a.id)).string()).not.toBeNull();
  });
});

describe('CIDR identities (real etcd)', () => {
  const infra = useInfra();
  it('are minted once per prefix mesh-wide, and collected after the grace period once no policy names them', async () => {
    const etcd = new Etcd3({ hosts: infra.etcd.endpoint });
    try {
      const cidrs = new CidrIdentityAllocator(etcd, layout);
      const [a, b] = await Promise.all([
        cidrs.allocateMany(['10.0.0.0/8', '192.0.2.0/24']),
        cidrs.allocateMany(['192.0.2.0/24']),
      ]);
      expect(a.get('192.0.2.0/24')!.id).toBe(b.get('192.0.2.0/24')!.id);
      expect(a.get('10.0.0.0/8')!.id >>> 24).toBe(1);
      let now = 5_000_000;
      const stored = async () => {
        const m = new Map<string, number>();
        for (const [k, v] of Object.entries(
          await etcd.getAll().prefix('/meshplane/mesh/cidr-identities/by-prefix/').strings(),
        )) {
          m.set(
            k.slice(k.lastIndexOf('/') + 1).replace('_', '/'),
            (JSON.parse(v) as { id: number }).id,
          );
        }
        return m;
      };
      const revision = async () => Number((await etcd.get('x').exec()).header.revision);
      const current = await stored();
      const rev = await revision();
      const view = {
        revision: () => rev,
        identities: () => [],
        references: () => 0,
        clusters: () => [],
        cidrIdentities: () => current,
        cidrPrefixesInUse: () => new Set(['10.0.0.0/8']),
      };
      const log = { info: () => {}, warn: () => {}, error: () => {}, child: () => log };
      const gc = new IdentityGc(etcd, layout, view, { now: () => now }, log, { graceMs: 60_000 });
      await gc.round();
      expect([...(await stored()).keys()].sort()).toEqual(['10.0.0.0/8', '192.0.2.0/24']);
      now += 61_000;
      await gc.round();
      expect([...(await stored()).keys()]).toEqual(['10.0.0.0/8']);
    } finally {
      etcd.close();
    }
  });
});

describe('identity labels (property)', () => {
  const filter = defaultLabelFilter();
  const labelMap = fc.dictionary(
    fc.stringMatching(/^[a-z][a-z0-9.-]{0,12}$/),
    fc.string({ maxLength: 8 }),
    { maxKeys: 6 },
  );

  it('canonicalization is independent of label order', () => {
    fc.assert(
      fc.property(labelMap, (labels) => {
        const reversed = Object.fromEntries(Object.entries(labels).reverse());
        expect(canonicalLabels(reversed)).toBe(canonicalLabels(labels));
        expect(labelsHash(reversed)).toBe(labelsHash(labels));
      }),
    );
  });

  it('excluded labels never change the identity', () => {
    const excluded = fc.constantFrom(
      'pod-template-hash',
      'controller-revision-hash',
      'statefulset.kubernetes.io/pod-name',
      'batch.kubernetes.io/job-completion-index',
      'annotation.foo',
    );
    fc.assert(
      fc.property(labelMap, excluded, fc.string({ maxLength: 10 }), (labels, key, value) => {
        const base = {
          cluster: 'eu',
          namespace: 'ns',
          namespaceLabels: {},
          serviceAccount: 'default',
        };
        const a = identityLabels({ ...base, podLabels: labels }, filter);
        const b = identityLabels({ ...base, podLabels: { ...labels, [key]: value } }, filter);
        expect(labelsHash(b)).toBe(labelsHash(a));
      }),
    );
  });
});
