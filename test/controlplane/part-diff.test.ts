// The per-part snapshot diff the xDS server sends from, and the part-wise
// digest it expects ACKs to report: both must equal the plain whole-snapshot
// computations they replace.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeResource, resourceKey, type EncodedResource } from '../../common/index.js';
import { PartDiffs, ResourceDigests, groupByType } from '../../controlplane/xds/index.js';
import { TYPE_ENDPOINT, TYPE_IPCACHE, TYPE_SERVICE } from '../../proto/index.js';

const shard = (s: number, identity: number): EncodedResource =>
  encodeResource(`ipcache/${s}`, {
    typeUrl: TYPE_IPCACHE,
    value: { shard: s, entries: [{ prefix: `10.0.0.${s}/32`, identity }] },
  });

const part = (shards: Map<number, number>): Map<string, EncodedResource> =>
  new Map(
    [...shards].map(([s, id]) => {
      const r = shard(s, id);
      return [resourceKey(r.typeUrl, r.name), r];
    }),
  );

const shardsArb = fc.dictionary(
  fc.integer({ min: 0, max: 15 }).map(String),
  fc.integer({ min: 256, max: 260 }),
);

describe('PartDiffs', () => {
  it('sends exactly the resources whose version differs and removes exactly the names that left', () => {
    fc.assert(
      fc.property(shardsArb, shardsArb, (a, b) => {
        const before = part(new Map(Object.entries(a).map(([k, v]) => [Number(k), v])));
        const after = part(new Map(Object.entries(b).map(([k, v]) => [Number(k), v])));
        const d = new PartDiffs().diff(before, after);
        const changed = [...after.entries()]
          .filter(([k, r]) => before.get(k)?.version !== r.version)
          .map(([, r]) => r.name);
        const removed = [...before.keys()].filter((k) => !after.has(k));
        expect(d.changed.map((r) => r.name).sort()).toEqual(changed.sort());
        expect(d.removed.map((r) => resourceKey(r.typeUrl, r.name)).sort()).toEqual(removed.sort());
      }),
    );
  });

  it('computes a step once and hands every node the same answer; the same part twice is no change', () => {
    const diffs = new PartDiffs();
    const before = part(
      new Map([
        [1, 300],
        [2, 301],
      ]),
    );
    const after = part(
      new Map([
        [1, 300],
        [2, 302],
        [3, 303],
      ]),
    );
    const first = diffs.diff(before, after);
    expect(diffs.diff(before, after)).toBe(first);
    expect(first.changed.map((r) => r.name).sort()).toEqual(['ipcache/2', 'ipcache/3']);
    expect(diffs.diff(after, after)).toEqual({ changed: [], removed: [] });
  });
});

describe('grouping a difference by type', () => {
  const r = (
    typeUrl: typeof TYPE_ENDPOINT | typeof TYPE_SERVICE,
    name: string,
  ): EncodedResource => ({
    typeUrl,
    name,
    version: 'v',
    payload: Buffer.alloc(0),
  });

  it('gives one response per type with anything to send or remove, ipcache, services, endpoints in that order', () => {
    const changed = [r(TYPE_ENDPOINT, 'e1'), shard(1, 300), r(TYPE_ENDPOINT, 'e2')];
    const removed = [
      { typeUrl: TYPE_SERVICE, name: 's1' },
      { typeUrl: TYPE_ENDPOINT, name: 'e0' },
    ];
    const g = groupByType(changed, removed);
    expect(g.map((t) => t.typeUrl)).toEqual([TYPE_IPCACHE, TYPE_SERVICE, TYPE_ENDPOINT]);
    expect(g.map((t) => [t.changed.map((c) => c.name), t.removed])).toEqual([
      [['ipcache/1'], []],
      [[], ['s1']],
      [['e1', 'e2'], ['e0']],
    ]);
    expect(groupByType([], [])).toEqual([]);
  });

  it('groups a shared step once: every node making it gets the same responses', () => {
    const diffs = new PartDiffs();
    const before = part(new Map([[1, 300]]));
    const after = part(new Map([[2, 301]]));
    const unchanged = part(new Map([[9, 309]]));
    const g = diffs.step([before, unchanged], [after, unchanged]);
    expect(diffs.step([before, unchanged], [after, unchanged])).toBe(g);
    expect(g).toEqual([
      { typeUrl: TYPE_IPCACHE, changed: [after.values().next().value], removed: ['ipcache/1'] },
    ]);
    expect(diffs.step([before, unchanged], [before, unchanged])).toEqual([]);
  });

  it('merges a step that changed several parts into one response per type', () => {
    const diffs = new PartDiffs();
    const a = part(new Map([[1, 300]]));
    const b = part(new Map([[2, 301]]));
    const g = diffs.step([a, b], [part(new Map([[1, 310]])), part(new Map())]);
    expect(g.map((t) => [t.typeUrl, t.changed.map((r) => r.name), t.removed])).toEqual([
      [TYPE_IPCACHE, ['ipcache/1'], ['ipcache/2']],
    ]);
  });
});

describe('ResourceDigests.digestOfParts', () => {
  it('equals the digest of all the parts’ resources together', () => {
    const d = new ResourceDigests();
    const a = part(
      new Map([
        [1, 300],
        [2, 301],
      ]),
    );
    const b = part(new Map([[5, 400]]));
    expect(d.digestOfParts([a, b])).toBe(d.digest([...a.values(), ...b.values()]));
    expect(d.digestOfParts([])).toBe(d.digest([]));
  });
});
