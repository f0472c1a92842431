import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  diffState,
  type WireNode,
  type WireRevision,
  type WireState,
} from '../../controlplane/dashboard/index.js';

// The page rebuilds the server's state from one `state` and a run of
// `delta`s; whatever happened in between, it must end where the server is.
const nodeArb = fc.tuple(
  fc.constantFrom('eu', 'us'),
  fc.constantFrom('n1', 'n2', 'n3', 'n4', 'n5'),
  fc.constantFrom(0, 1, 2, 3, 4),
  fc.nat(20),
  fc.nat(20),
  fc.nat(1000),
  fc.nat(1000),
  fc.constantFrom('', 'revision 3 rejected: capacity'),
) as fc.Arbitrary<WireNode>;
const revisionArb = fc.tuple(
  fc.integer({ min: 1, max: 12 }),
  fc.nat(1000),
  fc.nat(10),
  fc.nat(10),
  fc.nat(3),
  fc.nat(10),
  fc.nat(500),
  fc.array(fc.nat(5), { minLength: 3, maxLength: 3 }),
) as fc.Arbitrary<WireRevision>;
const unique = <T>(xs: T[], key: (x: T) => string): T[] => [
  ...new Map(xs.map((x) => [key(x), x])).values(),
];
const stateArb = fc
  .record({
    revision: fc.nat(20),
    commitTime: fc.nat(1000),
    nodes: fc.array(nodeArb, { maxLength: 10 }),
    revisions: fc.array(revisionArb, { maxLength: 6 }),
  })
  .map((s): Omit<WireState, 'seq'> => ({
    now: 5000,
    revision: s.revision,
    commitTime: s.commitTime,
    bucketsMs: [10, 100],
    nodes: unique(s.nodes, (n) => `${n[0]}/${n[1]}`).sort((a, b) =>
      `${a[0]}/${a[1]}`.localeCompare(`${b[0]}/${b[1]}`),
    ),
    revisions: unique(s.revisions, (r) => String(r[0])).sort((a, b) => b[0] - a[0]),
    errors: [],
  }));

describe('dashboard state deltas', () => {
  it('a page applying the deltas ends with the server state, errors included', () => {
    fc.assert(
      fc.property(fc.array(stateArb, { minLength: 1, maxLength: 6 }), (states) => {
        let server: WireState = { ...states[0]!, seq: 1 };
        diffState({ ...server, seq: 0, nodes: [], revisions: [], errors: [] }, server);
        let page: WireState = structuredClone(server);
        for (const s of states.slice(1)) {
          const next: WireState = { ...s, seq: server.seq + 1 };
          const delta = diffState(server, next);
          if (!delta) continue;
          server = next;
          page = applyDelta(page, structuredClone(delta))!;
          expect(page).toBeDefined();
        }
        expect(page).toEqual(server);
      }),
    );
  });

  it('reports a node entering nacked once, with its message, and nothing when nothing changed', () => {
    const base: WireState = {
      seq: 1,
      now: 1000,
      revision: 3,
      commitTime: 900,
      bucketsMs: [],
      nodes: [['eu', 'eu-1', 0, 3, 3, 500, 0, '']],
      revisions: [],
      errors: [],
    };
    const nacked: WireState = {
      ...base,
      seq: 2,
      nodes: [['eu', 'eu-1', 2, 3, 3, 950, 900, 'revision 4 rejected: capacity']],
    };
    const delta = diffState(base, nacked)!;
    expect(delta.errors).toEqual([[950, 'eu', 'eu-1', 'nacked', 'revision 4 rejected: capacity']]);
    expect(nacked.errors).toHaveLength(1);
    expect(diffState(nacked, { ...nacked, seq: 3, errors: [] })).toBeUndefined();
  });

  it('a delta that does not follow the state is refused (the page starts over)', () => {
    const s: WireState = {
      seq: 4,
      now: 0,
      revision: 1,
      commitTime: 0,
      bucketsMs: [],
      nodes: [],
      revisions: [],
      errors: [],
    };
    const d = {
      seq: 6,
      now: 0,
      revision: 2,
      commitTime: 0,
      nodes: [],
      removed: [],
      revisions: [],
      droppedRevisions: [],
      errors: [],
    };
    expect(applyDelta(s, d)).toBeUndefined();
  });
});
