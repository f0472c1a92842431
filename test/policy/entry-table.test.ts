import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EntryKey } from '../../controlplane/policy/index.js';
import { EntryTable } from '../../controlplane/policy/index.js';

// The flat table against a Map model: random count changes over enough keys
// to grow, fill with tombstones and rehash, with dirty keys spanning rehashes.
const keyArb = fc.record({
  direction: fc.constantFrom(1, 2),
  identity: fc.oneof(fc.integer({ min: 0, max: 11 }), fc.constant(0xffffffff)),
  protocol: fc.constantFrom(0, 132),
  portLow: fc.constantFrom(0, 65535),
  portHigh: fc.constantFrom(80, 65535),
});
const text = (k: EntryKey) =>
  `${k.direction}|${k.identity}|${k.protocol}|${k.portLow}|${k.portHigh}`;
/** verdict = 1 + the slot with the most counts, 0 when none */
const rules = {
  verdictOf: (_k: EntryKey, a: number, d: number, au: number) =>
    a + d + au === 0 ? 0 : d > 0 ? 2 : au > 0 ? 3 : 1,
};

describe('EntryTable', () => {
  it('holds exactly the verdicts of its counts through growth, removals and rehashes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: keyArb,
            slot: fc.constantFrom(0 as const, 1 as const, 2 as const),
            add: fc.boolean(),
            settle: fc.boolean(),
            reserve: fc.nat({ max: 50 }),
          }),
          { minLength: 200, maxLength: 600 },
        ),
        (ops) => {
          const table = new EntryTable();
          const counts = new Map<string, [number, number, number]>();
          const settled = new Map<string, number>();
          const dirty = new Map<string, EntryKey>();
          const changes: string[] = [];
          const settle = () => {
            for (const [s, k] of dirty) {
              const c = counts.get(s) ?? [0, 0, 0];
              const v = rules.verdictOf(k, ...c);
              if (v !== (settled.get(s) ?? 0)) changes.push(s);
              if (v === 0) settled.delete(s);
              else settled.set(s, v);
            }
            dirty.clear();
            const seen: string[] = [];
            table.settle(rules, (k) => seen.push(text(k)));
            expect(seen.sort()).toEqual(changes.sort());
            changes.length = 0;
          };
          for (const op of ops) {
            const s = text(op.key);
            const c = counts.get(s) ?? [0, 0, 0];
            if (!op.add && c[op.slot] === 0) {
              expect(() => table.count(op.key, op.slot, -1)).toThrow(/below zero/);
              dirty.set(s, op.key);
              continue;
            }
            c[op.slot] += op.add ? 1 : -1;
            counts.set(s, c);
            table.count(op.key, op.slot, op.add ? 1 : -1);
            dirty.set(s, op.key);
            if (op.reserve > 40) table.reserve(op.reserve);
            if (op.settle) settle();
          }
          settle();
          const held = new Map<string, number>();
          table.forEach((k, v) => held.set(text(k), v));
          expect(held).toEqual(settled);
          expect(table.size).toBe(settled.size);
          for (const [s, v] of settled) {
            const [direction, identity, protocol, portLow, portHigh] = s.split('|').map(Number);
            expect(
              table.get({ direction, identity, protocol, portLow, portHigh } as EntryKey),
            ).toBe(v);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses keys that do not fit its packing', () => {
    const t = new EntryTable();
    const k = { direction: 1, identity: 1, protocol: 6, portLow: 80, portHigh: 80 };
    expect(() => t.count({ ...k, portHigh: 65536 }, 0, 1)).toThrow(RangeError);
    expect(() => t.count({ ...k, identity: 2 ** 32 }, 0, 1)).toThrow(RangeError);
    expect(() => t.count({ ...k, protocol: 256 }, 0, 1)).toThrow(RangeError);
  });
});
