import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lookupPolicy, portRangeToPrefixes, prefixToPortRange } from '../../common/index.js';
import { Direction, Verdict, type PolicyEntry } from '../../proto/index.js';

const IN = Direction.DIRECTION_INGRESS;
const e = (
  identity: number,
  protocol: number,
  portLow: number,
  portHigh: number,
  verdict: Verdict,
): PolicyEntry => ({ direction: IN, identity, protocol, portLow, portHigh, verdict });
const q = (identity: number, port: number, protocol = 6) => ({
  direction: IN,
  identity,
  protocol,
  port,
});

describe('lookupPolicy', () => {
  it('exact → any-port → any-identity → any-any; deny beats allow at any level', () => {
    const entries = [
      e(0, 0, 0, 0, Verdict.VERDICT_AUDIT),
      e(7, 6, 80, 80, Verdict.VERDICT_ALLOW),
      e(0, 6, 22, 22, Verdict.VERDICT_DENY),
      e(8, 0, 0, 0, Verdict.VERDICT_ALLOW),
    ];
    expect(lookupPolicy(entries, q(7, 80), true)).toMatchObject({
      verdict: 'allow',
      entry: entries[1],
    });
    expect(lookupPolicy(entries, q(7, 81), true)).toMatchObject({
      verdict: 'audit',
      entry: entries[0],
    });
    expect(lookupPolicy(entries, q(8, 22), true)).toMatchObject({
      verdict: 'deny',
      entry: entries[2],
    });
    expect(lookupPolicy(entries, q(8, 23), true)).toMatchObject({
      verdict: 'allow',
      entry: entries[3],
    });
    expect(lookupPolicy([], q(8, 23), true)).toEqual({ verdict: 'deny' });
    expect(lookupPolicy([], q(8, 23), false)).toEqual({ verdict: 'allow' });
  });

  it('at the any-any level, the protocol any-port entry decides before the any-protocol one, in any order', () => {
    // An audit-mode direction's default (any-any audit) and a rule allowing every peer on TCP.
    const entries = [e(0, 0, 0, 0, Verdict.VERDICT_AUDIT), e(0, 6, 0, 0, Verdict.VERDICT_ALLOW)];
    for (const order of [entries, [...entries].reverse()]) {
      expect(lookupPolicy(order, q(7, 80), true)).toMatchObject({
        verdict: 'allow',
        entry: entries[1],
      });
      expect(lookupPolicy(order, q(7, 53, 17), true).verdict).toBe('audit');
    }
  });

  it('an audited deny wins over an allow; ranges match inside only', () => {
    const entries = [
      e(7, 6, 1000, 2000, Verdict.VERDICT_ALLOW),
      e(0, 6, 1500, 1500, Verdict.VERDICT_AUDIT),
    ];
    expect(lookupPolicy(entries, q(7, 1500), true).verdict).toBe('audit');
    expect(lookupPolicy(entries, q(7, 1999), true).verdict).toBe('allow');
    expect(lookupPolicy(entries, q(7, 2001), true).verdict).toBe('deny');
    expect(lookupPolicy(entries, q(7, 1999, 17), true).verdict).toBe('deny');
  });
});

describe('portRangeToPrefixes', () => {
  it('known decompositions', () => {
    expect(portRangeToPrefixes(0, 0)).toEqual([{ port: 0, prefixLen: 0 }]);
    expect(portRangeToPrefixes(80, 80)).toEqual([{ port: 80, prefixLen: 16 }]);
    expect(portRangeToPrefixes(1024, 2047)).toEqual([{ port: 1024, prefixLen: 6 }]);
    expect(portRangeToPrefixes(1, 65535)).toHaveLength(16);
  });

  it('covers exactly the range (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        (a, span) => {
          const low = a;
          const high = Math.min(65535, a + span);
          const blocks = portRangeToPrefixes(low, high).map(prefixToPortRange);
          let next = low;
          for (const b of blocks) {
            expect(b.low).toBe(next);
            next = b.high + 1;
          }
          expect(next - 1).toBe(high);
        },
      ),
    );
  });
});
