// The incremental ServicesState (pods kept indexed, only touched imports
// recomputed) must equal a fresh derivation after any sequence of changes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MeshObject, PodObject } from '../../common/index.js';
import { MeshModel } from '../../controlplane/model/index.js';
import { SnapshotCache } from '../../controlplane/snapshot/index.js';
import { keyLayout } from '../../controlplane/store/index.js';

const layout = keyLayout();
const put = (o: MeshObject | (PodObject & { identity: number })) => ({
  type: 'put' as const,
  key: layout.object(o.cluster, o),
  value: JSON.stringify(o),
});

function base(): ReturnType<typeof put>[] {
  const events = [];
  for (const [c, id] of [
    ['a', 1],
    ['b', 2],
  ] as const) {
    events.push({
      type: 'put' as const,
      key: layout.member(c),
      value: JSON.stringify({ name: c, id, joinedAt: '' }),
    });
    events.push({
      type: 'put' as const,
      key: layout.clusterInfo(c),
      value: JSON.stringify({ name: c, id, nodes: [`${c}-1`], podCIDR: `10.${id}.0.0/16` }),
    });
    events.push(put({ kind: 'Namespace', cluster: c, namespace: '', name: 'shop', labels: {} }));
    for (const s of ['cart', 'pay']) {
      events.push(
        put({
          kind: 'Service',
          cluster: c,
          namespace: 'shop',
          name: s,
          labels: {},
          type: 'ClusterIP',
          headless: false,
          selector: { app: s },
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
          sessionAffinity: 'None',
        }),
      );
      events.push(
        put({
          kind: 'ServiceExport',
          cluster: c,
          namespace: 'shop',
          name: s,
          labels: {},
          creationTimestamp: `2026-01-0${id}T00:00:00Z`,
        }),
      );
    }
  }
  return events;
}

const podArb = fc.record({
  cluster: fc.constantFrom('a', 'b'),
  n: fc.integer({ min: 0, max: 5 }),
  app: fc.constantFrom('cart', 'pay', 'other'),
  ready: fc.boolean(),
  present: fc.boolean(),
});

describe('ServicesState (incremental)', () => {
  it('equals a fresh derivation after any sequence of pod churn (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(podArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        (batches) => {
          const model = new MeshModel(layout);
          const cache = new SnapshotCache();
          let rev = 1;
          cache.update(rev++, 0, model, model.apply(base()));
          for (const batch of batches) {
            const events = batch.map((p) => {
              const pod: PodObject & { identity: number } = {
                kind: 'Pod',
                cluster: p.cluster,
                namespace: 'shop',
                name: `p${p.n}`,
                labels: { app: p.app },
                ips: [`10.${p.cluster === 'a' ? 1 : 2}.0.${p.n + 1}`],
                node: `${p.cluster}-1`,
                serviceAccount: 'default',
                ports: [],
                ready: p.ready,
                hostNetwork: false,
                identity: 256,
              };
              return p.present
                ? put(pod)
                : { type: 'delete' as const, key: layout.object(p.cluster, pod) };
            });
            cache.update(rev++, 0, model, model.apply(events));
          }
          const fresh = new SnapshotCache();
          const all = new MeshModel(layout);
          fresh.update(1, 0, all, all.reset([...model.pods()].map((p) => put(p)).concat(base())));
          expect(cache.services.derived).toEqual(fresh.services.derived);
        },
      ),
      { numRuns: 200 },
    );
  });
});
