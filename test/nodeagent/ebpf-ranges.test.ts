// The port-range trie the eBPF program looks ranges up in (nodeagent/datapath/ebpf/ranges.ts),
// without a kernel: the agent's incremental trie writes, applied change after
// change to a model trie, hold exactly what the entries derive, and a model of
// the program's lookup (bpf/meshplane.bpf.c policy_lookup: hash lookups for
// single ports and any-port, one LPM lookup per identity level for ranges)
// gives lookupPolicy's verdict for every packet. Real packets: test/datapath/port-ranges.privileged.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lookupPolicy, policyKeyString } from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import type { DatapathChange, PolicyRecord } from '../../nodeagent/index.js';
import {
  STRUCTS,
  commitRanges,
  decodeRangeKey,
  deriveRangePrefixes,
  expectedRanges,
  planRanges,
  rangeCapacityProblems,
  rangeGroupId,
  type PrefixId,
  type RangeMirror,
  type RangePlan,
} from '../../nodeagent/datapath/ebpf/index.js';

const IN = Direction.DIRECTION_INGRESS;
const { VERDICT_ALLOW: ALLOW, VERDICT_DENY: DENY, VERDICT_AUDIT: AUDIT } = Verdict;
const entry = (
  identity: number,
  protocol: number,
  portLow: number,
  portHigh: number,
  verdict: Verdict,
): PolicyRecord => ({ direction: IN, identity, protocol, portLow, portHigh, verdict });

/** The ports a trie group's prefixes cover, with their verdicts. */
function coverage(prefixes: Map<PrefixId, Verdict>): Map<number, Verdict> {
  const out = new Map<number, Verdict>();
  for (const [id, v] of prefixes) {
    const port = Math.floor(id / 32);
    const size = 2 ** (16 - (id % 32));
    for (let p = port; p < port + size; p++) {
      expect(out.has(p), `port ${p} in two prefixes`).toBe(false);
      out.set(p, v);
    }
  }
  return out;
}

/** The trie as the model kernel holds it: slot|group -> prefix -> verdict. */
type ModelTrie = Map<string, Map<PrefixId, Verdict>>;

function applyOps(trie: ModelTrie, ops: RangePlan['forward']): void {
  const where = (i: number, p: typeof ops.keys) => {
    const k = decodeRangeKey(p.at(i));
    const name = `${k.slot}|${rangeGroupId(k)}`;
    let g = trie.get(name);
    if (g === undefined) trie.set(name, (g = new Map<PrefixId, Verdict>()));
    return { g, id: k.port * 32 + k.prefixLen, name };
  };
  for (let i = 0; i < ops.deletes.count; i++) {
    const { g, id, name } = where(i, ops.deletes);
    expect(g.has(id), 'deletes only what the trie holds').toBe(true);
    g.delete(id);
    if (g.size === 0) trie.delete(name);
  }
  for (let i = 0; i < ops.keys.count; i++) {
    const { g, id } = where(i, ops.keys);
    g.set(id, ops.values.at(i).readUInt8(STRUCTS.policy_value.fields.verdict.offset));
  }
}

/** bpf/meshplane.bpf.c policy_lookup over a hash of the entries and the trie of slot 0. */
function kernelLookup(
  entries: PolicyRecord[],
  trie: ModelTrie,
  q: { identity: number; protocol: number; port: number },
): 'allow' | 'deny' | 'audit' | undefined {
  const hash = new Map(entries.map((e) => [policyKeyString(e), e.verdict]));
  const single = (identity: number, protocol: number, port: number) =>
    hash.get(policyKeyString({ direction: IN, identity, protocol, portLow: port, portHigh: port }));
  const range = (identity: number) => {
    const g = trie.get(`0|${rangeGroupId({ direction: IN, protocol: q.protocol, identity })}`);
    for (const [id, v] of g ?? []) {
      const port = Math.floor(id / 32);
      if (q.port >= port && q.port < port + 2 ** (16 - (id % 32))) return v;
    }
    return undefined;
  };
  const lookups: [Verdict | undefined, number][] = [
    [q.port ? single(q.identity, q.protocol, q.port) : undefined, 0],
    [range(q.identity), 0],
    [single(q.identity, q.protocol, 0), 1],
    [single(q.identity, 0, 0), 1],
    [q.port ? single(0, q.protocol, q.port) : undefined, 2],
    [range(0), 2],
    [single(0, q.protocol, 0), 3],
    [single(0, 0, 0), 3],
  ];
  let best: Verdict | undefined;
  let audit = false;
  for (const [v, level] of lookups) {
    if (v === undefined) continue;
    if (v === DENY) return 'deny';
    if (v === AUDIT && level < 3) audit = true;
    best ??= v;
  }
  if (audit) return 'audit';
  return best === undefined ? undefined : best === AUDIT ? 'audit' : 'allow';
}

function change(upserts: PolicyRecord[], deletes: PolicyRecord[]): DatapathChange {
  return {
    ipcache: { upserts: [], deletes: [] },
    endpoints: { upserts: [], deletes: [] },
    policies: [{ endpoint: 'eu/default/a', resource: 'endpoint/a', upserts, deletes }],
    services: { upserts: [], deletes: [] },
  };
}

function plan(c: DatapathChange, mirror: RangeMirror): RangePlan {
  return planRanges(c, mirror, () => 0, new Map());
}

describe('port-range trie', () => {
  it('covers exactly the ports of the ranges, with the merged verdict (deny > audit > allow)', () => {
    const got = coverage(
      deriveRangePrefixes([
        entry(5, 6, 8000, 8010, ALLOW),
        entry(5, 6, 8008, 8020, DENY),
        entry(5, 6, 8015, 8030, AUDIT),
        entry(5, 6, 9000, 9001, ALLOW),
      ]),
    );
    const want = new Map<number, Verdict>();
    for (let p = 8000; p <= 8007; p++) want.set(p, ALLOW);
    for (let p = 8008; p <= 8020; p++) want.set(p, DENY);
    for (let p = 8021; p <= 8030; p++) want.set(p, AUDIT);
    want.set(9000, ALLOW).set(9001, ALLOW);
    expect(got).toEqual(want);
    // Port 0 alone is one port (not "any port" as 0..0 is in a policy key).
    expect(
      coverage(deriveRangePrefixes([entry(5, 6, 0, 1, ALLOW), entry(5, 6, 1, 2, DENY)])),
    ).toEqual(
      new Map([
        [0, ALLOW],
        [1, DENY],
        [2, DENY],
      ]),
    );
    // The whole port space is 16 prefixes at most per interval, not a port each.
    expect(deriveRangePrefixes([entry(5, 6, 1, 65535, ALLOW)]).size).toBe(16);
  });

  const identities = [0, 5, 6];
  const verdicts = [ALLOW, DENY, AUDIT];
  const port = fc.integer({ min: 0, max: 40 });
  const anEntry = fc
    .record({
      identity: fc.constantFrom(...identities),
      protocol: fc.constantFrom(6, 17),
      kind: fc.constantFrom('single', 'range', 'range', 'any-port', 'any-any'),
      a: port,
      b: port,
      verdict: fc.constantFrom(...verdicts),
    })
    .map(({ identity, protocol, kind, a, b, verdict }) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      if (kind === 'any-port') return entry(identity, protocol, 0, 0, verdict);
      if (kind === 'any-any') return entry(identity, 0, 0, 0, verdict);
      if (kind === 'single') return entry(identity, protocol, hi || 1, hi || 1, verdict);
      return entry(identity, protocol, lo, hi === lo ? hi + 1 : hi, verdict);
    });
  // A sequence of states of one endpoint's map, each a set of entries (unique keys).
  const states = fc.array(fc.uniqueArray(anEntry, { selector: policyKeyString, maxLength: 10 }), {
    minLength: 1,
    maxLength: 5,
  });

  it('written change by change, holds what the entries derive; the lookup equals lookupPolicy', () => {
    fc.assert(
      fc.property(states, (seq) => {
        const mirror: RangeMirror = new Map();
        const trie: ModelTrie = new Map();
        let held = new Map<string, PolicyRecord>();
        for (const state of seq) {
          const next = new Map(state.map((e) => [policyKeyString(e), e]));
          const deletes = [...held].filter(([k]) => !next.has(k)).map(([, e]) => e);
          const p = plan(change(state, deletes), mirror);
          applyOps(trie, p.forward);
          commitRanges(mirror, p);
          held = next;

          const want = new Map<string, Map<PrefixId, Verdict>>();
          for (const [gid, g] of expectedRanges(held.values())) want.set(`0|${gid}`, g);
          expect(trie).toEqual(want);
          // Peers always have an identity (a miss in the ipcache is world, 2): never 0.
          for (const identity of [5, 6, 7]) {
            for (const protocol of [6, 17, 1]) {
              for (let port = 0; port <= 42; port++) {
                const q = { direction: IN, identity, protocol, port };
                const kernel = kernelLookup([...held.values()], trie, q);
                const shared = lookupPolicy([...held.values()], q, true);
                expect({ q, verdict: kernel ?? 'deny' }).toEqual({ q, verdict: shared.verdict });
              }
            }
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('undo writes bring the trie back to what it held', () => {
    fc.assert(
      fc.property(states, (seq) => {
        const mirror: RangeMirror = new Map();
        const trie: ModelTrie = new Map();
        let held = new Map<string, PolicyRecord>();
        for (const state of seq) {
          const next = new Map(state.map((e) => [policyKeyString(e), e]));
          const deletes = [...held].filter(([k]) => !next.has(k)).map(([, e]) => e);
          const p = plan(change(state, deletes), mirror);
          const before = structuredClone(trie);
          applyOps(trie, p.forward);
          applyOps(trie, p.undo);
          expect(trie).toEqual(before);
          applyOps(trie, p.forward);
          commitRanges(mirror, p);
          held = next;
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses ranges that need more prefixes than one endpoint may hold, naming the resource', () => {
    const p = plan(change([entry(5, 6, 1, 65535, ALLOW)], []), new Map());
    expect(rangeCapacityProblems(p, 15)).toEqual([
      {
        code: 'CAPACITY',
        message:
          'port ranges of eu/default/a would need 16 port prefixes in the kernel, capacity is 15',
        resourceNames: ['endpoint/a'],
      },
    ]);
    expect(rangeCapacityProblems(p, 16)).toEqual([]);
  });
});
