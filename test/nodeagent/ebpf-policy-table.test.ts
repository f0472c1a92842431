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
