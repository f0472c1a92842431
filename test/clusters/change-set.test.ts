import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MeshObject, PodObject } from '../../common/index.js';
import { objectKey } from '../../common/index.js';
import {
  canonicalJson,
  clusterState,
  diffChangeSet,
  isRelevantChange,
} from '../../clusters/src/index.js';
import { spec } from './fixtures.js';

const eu = spec('eu', 1, ['eu-1']);

function pod(name: string, app: string, ip: string): PodObject {
  return {
    kind: 'Pod',
    cluster: 'eu',
    namespace: 'n',
    name,
    labels: { app },
    ips: [ip],
    node: 'eu-1',
    serviceAccount: 'default',
    ports: [],
    ready: true,
    hostNetwork: false,
  };
}

describe('diffChangeSet', () => {
  const a = pod('a', 'web', '10.1.0.1');
  const b = pod('b', 'web', '10.1.0.2');

  it('sends everything first, then only the differences', () => {
    const first = diffChangeSet(undefined, clusterState(eu, [a, b]), 'o');
    expect(first).toMatchObject({
      full: true,
      upserts: [a, b],
      deletes: [],
      cluster: eu,
      origin: 'o',
    });

    const before = clusterState(eu, [a, b]);
    const a2 = { ...a, labels: { app: 'api' } };
    const c = pod('c', 'db', '10.1.0.3');
    expect(diffChangeSet(before, clusterState(eu, [a2, c]), 'o')).toMatchObject({
      full: false,
      upserts: [a2, c],
      deletes: [{ kind: 'Pod', namespace: 'n', name: 'b' }],
    });
  });

  it('re-sends what a failed publish may have changed, as it is now desired', () => {
    const published = clusterState(eu, [a]);
    const c = pod('c', 'db', '10.1.0.3');
    // A failed change set upserted b and c and deleted a; now a is desired unchanged, b too, c is gone.
    const uncertain = { keys: new Set([objectKey(a), objectKey(b), objectKey(c)]), spec: true };
    expect(diffChangeSet(published, clusterState(eu, [a, b]), 'o', uncertain)).toMatchObject({
      full: false,
      upserts: [a, b],
      deletes: [{ kind: 'Pod', namespace: 'n', name: 'c' }],
    });
    // Nothing differs from what was acknowledged, but the spec may have been sent: send it again.
    expect(
      diffChangeSet(published, published, 'o', { keys: new Set<string>(), spec: true }),
    ).toMatchObject({ full: false, upserts: [], deletes: [], cluster: eu });
  });

  it('sends nothing when nothing changed, key order included', () => {
    const reordered = JSON.parse(canonicalJson(a)) as MeshObject;
    expect(
      diffChangeSet(clusterState(eu, [a]), clusterState(eu, [reordered]), 'o'),
    ).toBeUndefined();
  });

  it('sends a change of nodes or pod CIDR even when no object changed', () => {
    const more = { ...eu, nodes: ['eu-1', 'eu-2'] };
    expect(diffChangeSet(clusterState(eu, [a]), clusterState(more, [a]), 'o')).toMatchObject({
      full: false,
      cluster: more,
      upserts: [],
      deletes: [],
    });
  });

  it('applying the diff to the published state gives the desired state (property)', () => {
    const objects = fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
        app: fc.constantFrom('x', 'y'),
        ip: fc.constantFrom('10.1.0.1', '10.1.0.2'),
      }),
      { selector: (p) => p.name },
    );
    fc.assert(
      fc.property(objects, objects, (before, after) => {
        const published = clusterState(
          eu,
          before.map((p) => pod(p.name, p.app, p.ip)),
        );
        const desired = clusterState(
          eu,
          after.map((p) => pod(p.name, p.app, p.ip)),
        );
        const event = diffChangeSet(published, desired, 'o');
        const applied = new Map([...published.objects].map(([k, v]) => [k, v.object]));
        for (const ref of event?.deletes ?? []) applied.delete(objectKey(ref));
        for (const object of event?.upserts ?? []) applied.set(objectKey(object), object);
        const text = (m: Map<string, MeshObject>): string[] =>
          [...m.entries()].map(([k, v]) => `${k}=${canonicalJson(v)}`).sort();
        expect(text(applied)).toEqual(
          text(new Map([...desired.objects].map(([k, v]) => [k, v.object]))),
        );
      }),
    );
  });
});

describe('isRelevantChange', () => {
  it.each([
    ['prod/pods.yaml', true],
    ['prod/pods.YML', true],
    ['list.json', true],
    ['prod', true], // a folder
    [null, true],
    ['prod/.pods.yaml.swp', false],
    ['prod/pods.yaml~', false],
    ['.git/index', false],
    ['README.md', false],
  ])('%s → %s', (path, relevant) => {
    expect(isRelevantChange(path)).toBe(relevant);
  });
});
