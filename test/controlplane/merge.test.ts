import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { objectKey, type ChangeSetEvent, type MeshObject } from '../../common/index.js';
import { mergeChangeSets } from '../../controlplane/ingest/index.js';

const cluster = { name: 'eu', id: 1, nodes: ['eu-1'], podCIDR: '10.1.0.0/16' };
const ns = (name: string, v: string): MeshObject => ({
  kind: 'Namespace',
  cluster: 'eu',
  namespace: '',
  name,
  labels: { v },
});

/** The reference semantics: what committing one change set does to the stored objects. */
function apply(state: Map<string, MeshObject>, ev: ChangeSetEvent): Map<string, MeshObject> {
  const next = ev.full ? new Map<string, MeshObject>() : new Map(state);
  for (const u of ev.upserts) next.set(objectKey(u), u);
  for (const d of ev.deletes)
    if (!ev.upserts.some((u) => objectKey(u) === objectKey(d))) next.delete(objectKey(d));
  return next;
}

const name = fc.constantFrom('a', 'b', 'c', 'd');
const changeSet = fc
  .record({
    full: fc.boolean(),
    upserts: fc.uniqueArray(fc.tuple(name, fc.string({ maxLength: 2 })), {
      selector: ([n]) => n,
      maxLength: 3,
    }),
    deletes: fc.uniqueArray(name, { maxLength: 2 }),
  })
  .map((r): ChangeSetEvent => ({
    apiVersion: 'meshplane/v1',
    cluster,
    origin: 't',
    full: r.full,
    upserts: r.upserts.map(([n, v]) => ns(n, v)),
    deletes: r.deletes
      .filter((d) => !r.upserts.some(([n]) => n === d))
      .map((d) => ({ kind: 'Namespace' as const, namespace: '', name: d })),
  }));

describe('mergeChangeSets', () => {
  it('committing the fold equals committing each change set in order (property)', () => {
    fc.assert(
      fc.property(
        fc.array(changeSet, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(name, fc.string({ maxLength: 2 })), { maxLength: 4 }),
        (events, initial) => {
          const start = new Map(initial.map(([n, v]) => [`Namespace//${n}`, ns(n, v)]));
          const sequential = events.reduce(apply, start);
          const folded = apply(start, mergeChangeSets(events));
          expect([...folded.entries()].sort()).toEqual([...sequential.entries()].sort());
        },
      ),
      { numRuns: 500 },
    );
  });
});
