// The eBPF datapath's mirror of a policy map (kernel key bytes → value, an
// open-addressing table) against a plain Map, and the policy key ids the
// checks use against the kernel key encoding. Pure: no kernel needed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { policyKeyId } from '../../nodeagent/datapath/index.js';
import {
  PolicyTable,
  encodePolicyKey,
  policyKeyOfId,
} from '../../nodeagent/datapath/ebpf/index.js';

const key = (identity: number, port: number): Buffer =>
  encodePolicyKey({ direction: 1, identity, protocol: 6, portLow: port, portHigh: port });

describe('PolicyTable (the eBPF mirror of one policy map)', () => {
  it('holds, replaces and forgets entries exactly as a Map does, across growth and deletes', () => {
    const op = fc.record({
      kind: fc.constantFrom('set', 'delete', 'get'),
      // a small key space: many collisions, replacements and deletes of held keys
      identity: fc.integer({ min: 0, max: 40 }),
      port: fc.integer({ min: 0, max: 3 }),
      value: fc.integer({ min: 0, max: 0xffffffff }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new PolicyTable(12);
        const model = new Map<string, number>();
        for (const o of ops) {
          const k = key(o.identity, o.port);
          const id = k.toString('hex');
          const before = model.get(id) ?? -1;
          if (o.kind === 'set') {
            expect(table.set(k, 0, o.value)).toBe(before);
            model.set(id, o.value);
          } else if (o.kind === 'delete') {
            expect(table.delete(k, 0)).toBe(before);
            model.delete(id);
          } else expect(table.get(k, 0)).toBe(before);
          expect(table.size).toBe(model.size);
        }
        const seen = new Map<string, number>();
        table.forEach((k, v) => seen.set(k.toString('hex'), v));
        expect(seen).toEqual(model);
        for (const [id, v] of model) expect(table.get(Buffer.from(id, 'hex'), 0)).toBe(v);
      }),
      { numRuns: 200 },
    );
  });

  it('reads keys at an offset of a packed buffer', () => {
    const packed = Buffer.concat([key(1, 80), key(2, 443), key(3, 8080)]);
    const table = new PolicyTable(12, 3);
    for (let i = 0; i < 3; i++) table.set(packed, i * 12, 100 + i);
    expect(table.get(key(2, 443), 0)).toBe(101);
    expect(table.get(packed, 24)).toBe(102);
    expect(table.get(key(2, 80), 0)).toBe(-1);
  });

  it('builds a deferred table from packed batch buffers on first use, as set() one by one would', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            identity: fc.integer({ min: 0, max: 5000 }),
            port: fc.integer({ min: 0, max: 7 }),
            value: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { selector: (e) => `${e.identity}/${e.port}`, maxLength: 300 },
        ),
        fc.constantFrom('size', 'get', 'set', 'delete', 'forEach', 'materialize', 'slices'),
        (entries, first) => {
          // values of 8 bytes (the first 4 are the value), as a wider kernel value would come back
          const keys = Buffer.concat(entries.map((e) => key(e.identity, e.port)));
          const values = Buffer.alloc(8 * entries.length);
          entries.forEach((e, i) => values.writeUInt32LE(e.value, i * 8));
          const table = PolicyTable.deferred(12, keys, values, 8, entries.length);
          const model = new PolicyTable(12);
          for (const e of entries) model.set(key(e.identity, e.port), 0, e.value);
          const probe = key(6000, 1);
          if (first === 'get' && entries.length > 0) {
            const e = entries[0]!;
            expect(table.get(key(e.identity, e.port), 0)).toBe(e.value);
          } else if (first === 'set') {
            expect(table.set(probe, 0, 7)).toBe(-1);
            model.set(probe, 0, 7);
          } else if (first === 'delete' && entries.length > 0) {
            const e = entries[0]!;
            expect(table.delete(key(e.identity, e.port), 0)).toBe(e.value);
            model.delete(key(e.identity, e.port), 0);
          } else if (first === 'materialize') expect(table.materialize()).toBe(true);
          else if (first === 'slices') {
            // A slice at a time, then what any other call does: insert the rest first.
            const done = table.materialize(7);
            expect(done).toBe(entries.length <= 7);
            if (!done) expect(table.materialize(7)).toBe(entries.length <= 14);
          }
          expect(table.size).toBe(model.size);
          const seen = new Map<string, number>();
          table.forEach((k, v) => seen.set(k.toString('hex'), v));
          const want = new Map<string, number>();
          model.forEach((k, v) => want.set(k.toString('hex'), v));
          expect(seen).toEqual(want);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('takes 100,000 entries and gives each back', () => {
    const table = new PolicyTable(12);
    for (let i = 0; i < 100_000; i++) table.set(key(i >> 3, i & 7), 0, i);
    expect(table.size).toBe(100_000);
    for (let i = 0; i < 100_000; i += 997) expect(table.get(key(i >> 3, i & 7), 0)).toBe(i);
  });
});

describe('policy key ids (the checks name keys by id)', () => {
  it('parses back every key policyKeyId writes', () => {
    fc.assert(
      fc.property(
        fc.record({
          direction: fc.integer({ min: 0, max: 255 }),
          identity: fc.integer({ min: 0, max: 0xffffffff }),
          protocol: fc.integer({ min: 0, max: 255 }),
          portLow: fc.integer({ min: 0, max: 65535 }),
          portHigh: fc.integer({ min: 0, max: 65535 }),
        }),
        (k) => {
          expect(policyKeyOfId(policyKeyId(k))).toEqual(k);
        },
      ),
    );
    expect(() => policyKeyOfId('1|2|3')).toThrow(/not a policy key id/);
  });
});
