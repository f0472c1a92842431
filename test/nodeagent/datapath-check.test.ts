import { describe, expect, it } from 'vitest';
import { Direction, Verdict } from '../../proto/index.js';
import {
  checkChange,
  policyKeyId,
  type DatapathChange,
  type DatapathView,
  type PolicyRecord,
} from '../../nodeagent/index.js';

const empty: DatapathView = {
  ipcacheCount: 0,
  endpointCount: 1,
  hasIpcache: () => false,
  hasEndpoint: (e) => e === 'eu/default/a',
  policyCount: () => 0,
  hasPolicy: () => false,
};
const capacity = {
  backend: 'emulated',
  ipcacheEntries: 10,
  endpoints: 10,
  policyEntriesPerEndpoint: 1_000_000,
};

function change(upserts: PolicyRecord[], deletes: PolicyRecord[] = []): DatapathChange {
  return {
    ipcache: { upserts: [], deletes: [] },
    endpoints: { upserts: [], deletes: [] },
    policies: [{ endpoint: 'eu/default/a', resource: 'endpoint/a', upserts, deletes }],
    services: { upserts: [], deletes: [] },
  };
}

/** A seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('checkChange: duplicate policy keys', () => {
  it('names each repeated key once per repeat, in order, with its id (upserts, then deletes)', () => {
    const r = (identity: number, port: number, verdict = Verdict.VERDICT_ALLOW): PolicyRecord => ({
      direction: Direction.DIRECTION_INGRESS,
      identity,
      protocol: 6,
      portLow: port,
      portHigh: port,
      verdict,
    });
    const problems = checkChange(
      change([r(0xffffffff, 80), r(7, 80), r(0xffffffff, 80, Verdict.VERDICT_DENY)], [r(7, 80)]),
      empty,
      capacity,
    );
    expect(problems.map((p) => p.message)).toEqual([
      `policy key of eu/default/a "${policyKeyId(r(0xffffffff, 80))}" appears more than once in one change`,
      `policy key of eu/default/a "${policyKeyId(r(7, 80))}" appears more than once in one change`,
    ]);
    expect(problems.every((p) => p.code === 'VALIDATION')).toBe(true);
  });

  it('names each repeat once when a key that cannot be packed comes after repeats (string fallback)', () => {
    const r = (identity: number, port: number): PolicyRecord => ({
      direction: Direction.DIRECTION_INGRESS,
      identity,
      protocol: 6,
      portLow: port,
      portHigh: port,
      verdict: Verdict.VERDICT_ALLOW,
    });
    // 2 ** 32 is no uint32 identity: the packed set cannot hold it.
    const problems = checkChange(
      change([r(7, 80), r(7, 80), r(2 ** 32, 81), r(2 ** 32, 81)], [r(7, 80)]),
      empty,
      capacity,
    ).filter((p) => p.message.includes('more than once'));
    expect(problems.map((p) => p.message)).toEqual([
      `policy key of eu/default/a "${policyKeyId(r(7, 80))}" appears more than once in one change`,
      `policy key of eu/default/a "${policyKeyId(r(2 ** 32, 81))}" appears more than once in one change`,
      `policy key of eu/default/a "${policyKeyId(r(7, 80))}" appears more than once in one change`,
    ]);
  });

  it('finds the same repeats as comparing key id strings (random keys with many collisions)', () => {
    const next = random(7);
    for (let round = 0; round < 20; round++) {
      const pick = (n: number): number => Math.floor(next() * n);
      const key = (): PolicyRecord => ({
        direction: pick(2) === 0 ? Direction.DIRECTION_INGRESS : Direction.DIRECTION_EGRESS,
        identity: [0, 1, 0x10000, 0xffffffff, pick(2 ** 32)][pick(5)]!,
        protocol: [6, 17, 132][pick(3)]!,
        portLow: pick(4) * 1000,
        portHigh: pick(2) === 0 ? 0 : 5000 + pick(3),
        verdict: Verdict.VERDICT_ALLOW,
      });
      const upserts = Array.from({ length: 300 }, key);
      const deletes = Array.from({ length: 100 }, key);
      const seen = new Set<string>();
      const expected: string[] = [];
      for (const k of [...upserts, ...deletes]) {
        const id = policyKeyId(k);
        if (seen.has(id))
          expected.push(`policy key of eu/default/a "${id}" appears more than once in one change`);
        seen.add(id);
      }
      expect(expected.length).toBeGreaterThan(0);
      const got = checkChange(change(upserts, deletes), empty, capacity).map((p) => p.message);
      expect(got).toEqual(expected);
    }
  });
});

describe('checkChange: policy entry values', () => {
  // The oracle, written from the rules (common/policy-map.ts) rather than from check.ts.
  function expectedMessages(e: PolicyRecord): string[] {
    const out: string[] = [];
    const where = 'policy entry of eu/default/a';
    if (e.direction !== Direction.DIRECTION_INGRESS && e.direction !== Direction.DIRECTION_EGRESS)
      out.push(`${where}: direction ${e.direction} is not INGRESS or EGRESS`);
    if (![Verdict.VERDICT_ALLOW, Verdict.VERDICT_DENY, Verdict.VERDICT_AUDIT].includes(e.verdict))
      out.push(`${where}: verdict ${e.verdict} is not ALLOW, DENY or AUDIT`);
    if (!Number.isInteger(e.protocol) || e.protocol < 0 || e.protocol > 255)
      out.push(`${where}: protocol ${e.protocol} is not 0..255`);
    const port = (p: number): boolean => Number.isInteger(p) && p >= 0 && p <= 65535;
    if (!port(e.portLow) || !port(e.portHigh) || (e.portHigh !== 0 && e.portHigh < e.portLow))
      out.push(`${where}: port range ${e.portLow}-${e.portHigh} is invalid`);
    else if (e.protocol === 0 && (e.portLow !== 0 || e.portHigh !== 0))
      out.push(`${where}: port ${e.portLow}-${e.portHigh} needs a protocol, not ANY`);
    return out;
  }

  it('refuses exactly the entries with a bad field, with one message per bad field (random entries, valid ones among them)', () => {
    const next = random(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    const directions = [Direction.DIRECTION_INGRESS, Direction.DIRECTION_EGRESS, 0, 3, 1.5];
    const verdicts = [Verdict.VERDICT_ALLOW, Verdict.VERDICT_DENY, Verdict.VERDICT_AUDIT, 0, 9];
    const protocols = [6, 17, 132, 0, 256, -1, 6.5];
    const ports = [0, 80, 443, 8080, 65535, 65536, -1, 80.5];
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      // Mostly valid entries around one random one, as a large revision with one bad entry looks.
      const ok: PolicyRecord = {
        direction: Direction.DIRECTION_INGRESS,
        identity: 1000 + i,
        protocol: 6,
        portLow: 80,
        portHigh: 0,
        verdict: Verdict.VERDICT_ALLOW,
      };
      const e: PolicyRecord = {
        direction: pick(directions),
        identity: 7,
        protocol: pick(protocols),
        portLow: pick(ports),
        portHigh: pick(ports),
        verdict: pick(verdicts),
      };
      const problems = checkChange(change([ok, e]), empty, capacity);
      const expected = expectedMessages(e);
      expect(problems.map((p) => p.message)).toEqual(expected);
      for (const p of problems) expect(p.resourceNames).toEqual(['endpoint/a']);
      if (expected.length > 0) refused += 1;
    }
    // Both kinds were drawn.
    expect(refused).toBeGreaterThan(100);
    expect(refused).toBeLessThan(3000);
  });
});
