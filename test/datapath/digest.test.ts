import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Digest, PolicyEntryHasher, entryHash, policyEntry } from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';

describe('the shared digest (common/digest.ts)', () => {
  const entries = [
    'ipcache|10.0.0.1/32|65793',
    'policy|eu/default/web-1|DIRECTION_INGRESS|65794|6|8080-8080|VERDICT_ALLOW',
    'policy|eu/default/web-1|DIRECTION_INGRESS|65794|6|8080-8081|VERDICT_ALLOW',
    'service|default/api|ClusterIP|10.96.0.1|http:80/TCP|',
    'x', // odd length: the tail block
    '',
    'endpoint|eu/default/wéb-1|65793|10.0.0.1||in=1|eg=1',
  ];

  it('is 16 hex digits, 0 for no entries, and does not depend on order', () => {
    expect(new Digest().toString()).toBe('0000000000000000');
    const a = Digest.of(entries).toString();
    const b = Digest.of([...entries].reverse()).toString();
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(b).toBe(a);
  });

  it('formats a sum as its two 32-bit halves in hex, zero-padded', () => {
    expect(Digest.fromSum(0xdeadbeef, 0xabcd, 1).toString()).toBe('deadbeef0000abcd');
    expect(Digest.fromSum(0, 0x80000000, 1).toString()).toBe('0000000080000000');
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (hi, lo) => {
        const hex = Digest.fromSum(hi, lo, 1).toString();
        expect(hex).toBe(hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0'));
      }),
    );
  });

  it('tells apart entries that differ in one field or one character', () => {
    const hashes = new Set(entries.map(entryHash));
    expect(hashes.size).toBe(entries.length);
    expect(entryHash('ab')).not.toBe(entryHash('ba'));
  });

  it('removes what it added, across the 2^64 wrap, and merges disjoint states', () => {
    const d = new Digest();
    for (const e of entries) d.add(e);
    for (const e of entries.slice(0, 3)) d.remove(e);
    expect(d.toString()).toBe(Digest.of(entries.slice(3)).toString());
    expect(d.entries).toBe(entries.length - 3);
    for (const e of entries.slice(3)) d.remove(e);
    expect(d.toString()).toBe('0000000000000000');
    // Removing before adding wraps below zero and comes back.
    d.remove(entries[0]!);
    d.add(entries[0]!);
    expect(d.toString()).toBe('0000000000000000');

    const left = Digest.of(entries.slice(0, 4));
    left.merge(Digest.of(entries.slice(4)));
    expect(left.toString()).toBe(Digest.of(entries).toString());
    expect(left.entries).toBe(entries.length);
  });

  it('keeps 64 bits: sums of many entries do not lose the high half', () => {
    const many = Array.from(
      { length: 10_000 },
      (_, i) => `ipcache|10.${i >> 8}.${i & 255}.1/32|${i}`,
    );
    const d = Digest.of(many);
    expect(d.toString().slice(0, 8)).not.toBe('00000000');
    for (const e of many) d.remove(e);
    expect(d.toString()).toBe('0000000000000000');
  });
});

describe('PolicyEntryHasher (policy entries hashed without their strings)', () => {
  const field = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.constantFrom(0, 1, 9, 10, 99, 100, 65535, 65536, 4294967295),
  );
  it('adds and removes exactly what Digest.add/remove of policyEntry(...) do', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40, unit: 'binary' }),
        fc.array(
          fc.record({
            // enum values the proto names, and bytes it does not (a tampered kernel entry)
            direction: fc.integer({ min: 0, max: 255 }),
            identity: field,
            protocol: fc.integer({ min: 0, max: 255 }),
            portLow: fc.integer({ min: 0, max: 65535 }),
            portHigh: fc.integer({ min: 0, max: 65535 }),
            verdict: fc.integer({ min: 0, max: 255 }),
          }),
          { maxLength: 20 },
        ),
        (endpoint, records) => {
          const hasher = new PolicyEntryHasher(endpoint);
          const fast = new Digest();
          const slow = new Digest();
          for (const r of records) {
            const h = hasher.hash(
              r.direction,
              r.identity,
              r.protocol,
              r.portLow,
              r.portHigh,
              r.verdict,
            );
            expect(
              `${h.hi.toString(16).padStart(8, '0')}${h.lo.toString(16).padStart(8, '0')}`,
            ).toBe(entryHash(policyEntry(endpoint, r)));
            fast.addHashed(h);
            slow.add(policyEntry(endpoint, r));
          }
          expect(fast.toString()).toBe(slow.toString());
          expect(fast.entries).toBe(records.length);
          for (const r of records.slice(0, 5)) {
            fast.removeHashed(
              hasher.hash(r.direction, r.identity, r.protocol, r.portLow, r.portHigh, r.verdict),
            );
            slow.remove(policyEntry(endpoint, r));
          }
          expect(fast.toString()).toBe(slow.toString());
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees with policyEntry for fields no kernel entry can hold (the text form)', () => {
    const hasher = new PolicyEntryHasher('eu/default/web-1');
    const odd = [
      [-1, 65794, 6, 80, 80, 1],
      [256, 65794, 6, 80, 80, 1],
      [1, 2 ** 32, 6, 80, 80, 1],
      [1, 65794, 300, 80, 80, 1],
      [1, 65794, 6, 70000, 80, 1],
      [1, 65794, 6, 80, 1.5, 1],
      [1, 65794, 6, 80, 80, -7],
    ] as const;
    const hashes = new Set<string>();
    for (const [direction, identity, protocol, portLow, portHigh, verdict] of odd) {
      const h = hasher.hash(direction, identity, protocol, portLow, portHigh, verdict);
      const hex = `${h.hi.toString(16).padStart(8, '0')}${h.lo.toString(16).padStart(8, '0')}`;
      expect(hex).toBe(
        entryHash(
          policyEntry('eu/default/web-1', {
            direction: direction as Direction,
            identity,
            protocol,
            portLow,
            portHigh,
            verdict: verdict as Verdict,
          }),
        ),
      );
      hashes.add(hex);
    }
    expect(hashes.size).toBe(odd.length);
  });

  it('changes when any one field of a policy entry changes', () => {
    const base = {
      direction: Direction.DIRECTION_INGRESS,
      identity: 65794,
      protocol: 6,
      portLow: 8080,
      portHigh: 8081,
      verdict: Verdict.VERDICT_ALLOW,
    };
    const changed = [
      { ...base, direction: Direction.DIRECTION_EGRESS },
      { ...base, identity: 65795 },
      { ...base, identity: 65794 + 0x10000 },
      { ...base, protocol: 17 },
      { ...base, portLow: 8079 },
      { ...base, portHigh: 8082 },
      { ...base, verdict: Verdict.VERDICT_DENY },
      // fields swapped between positions
      { ...base, portLow: 8081, portHigh: 8080 },
    ];
    for (const endpoint of ['eu/default/web-1', 'eu/default/web-10']) {
      const hashes = new Set([base, ...changed].map((e) => entryHash(policyEntry(endpoint, e))));
      expect(hashes.size).toBe(changed.length + 1);
    }
    expect(entryHash(policyEntry('eu/default/web-1', base))).not.toBe(
      entryHash(policyEntry('eu/default/web-2', base)),
    );
  });

  it('subtract undoes merge', () => {
    const a = Digest.of(['a', 'b', 'c']);
    const b = Digest.of(['d', 'e']);
    const before = a.toString();
    a.merge(b);
    a.subtract(b);
    expect(a.toString()).toBe(before);
    expect(a.entries).toBe(3);
  });
});
