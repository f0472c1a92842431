import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BucketedMap } from '../../controlplane/snapshot/index.js';

describe('BucketedMap', () => {
  it('behaves as a Map under any sequence of sets and deletes, and never changes a published version (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.string({ maxLength: 4 }), fc.integer()), {
          maxLength: 60,
        }),
        (ops) => {
          let m = BucketedMap.empty<number>(4);
          const ref = new Map<string, number>();
          const versions: [BucketedMap<number>, [string, number][]][] = [];
          for (const [set, k, v] of ops) {
            versions.push([m, [...m.entries()]]);
            if (set) {
              m = m.with(k, v);
              ref.set(k, v);
            } else {
              m = m.without(k);
              ref.delete(k);
            }
            expect(m.size).toBe(ref.size);
            expect(m.get(k)).toBe(ref.get(k));
          }
          expect(new Map(m.entries())).toEqual(ref);
          for (const [old, entries] of versions) expect([...old.entries()]).toEqual(entries);
        },
      ),
    );
  });

  it('applies a batch of sets and deletes as the same sequence of with/without would, leaving older versions intact (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.option(fc.integer())), {
          maxLength: 20,
        }),
        fc.array(
          fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.option(fc.integer())), {
            maxLength: 12,
          }),
          { maxLength: 5 },
        ),
        (initial, batches) => {
          let m = BucketedMap.empty<number>(4);
          for (const [k, v] of initial) m = v === null ? m.without(k) : m.with(k, v);
          for (const batch of batches) {
            const before = [...m.entries()];
            let expected = m;
            for (const [k, v] of batch)
              expected = v === null ? expected.without(k) : expected.with(k, v);
            const next = m.withChanges(batch.map(([k, v]) => [k, v ?? undefined] as const));
            expect(new Map(next.entries())).toEqual(new Map(expected.entries()));
            expect(next.size).toBe(expected.size);
            expect([...m.entries()]).toEqual(before);
            m = next;
          }
        },
      ),
    );
  });

  it('returns the same map when a batch changes nothing', () => {
    const m = BucketedMap.empty<number>(4).with('a', 1);
    expect(
      m.withChanges([
        ['a', 1],
        ['b', undefined],
      ]),
    ).toBe(m);
  });
});
