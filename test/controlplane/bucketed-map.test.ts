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
});
