import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  compareStrings,
  decodeResource,
  type EncodedResource,
  type ResourceValue,
} from '../../common/index.js';
import {
  DatapathError,
  EmulatedDatapath,
  checkChange,
  type DatapathView,
  EmulatedMaps,
  ResourceStore,
  RevisionKeyOwners,
  ShardBytes,
  buildDelta,
  translateDelta,
} from '../../nodeagent/index.js';
import {
  DeltaDiscoveryResponse,
  Direction,
  IpcacheShard,
  Verdict,
  type PolicyEntry,
  TYPE_ENDPOINT,
  TYPE_IPCACHE,
  TYPE_SERVICE,
} from '../../proto/index.js';
import { allow, endpoint, expectedDigest, part, service, shard } from './fixtures.js';

/** An empty datapath, as the checks see it. */
const EMPTY_VIEW: DatapathView = {
  ipcacheCount: 0,
  endpointCount: 0,
  hasIpcache: () => false,
  hasEndpoint: () => false,
  policyCount: () => 0,
  hasPolicy: () => false,
};

/** Applies `resources`/`removed` as one revision the way the agent does; returns the rejections, if any. */
async function applyRevision(
  store: ResourceStore,
  dp: EmulatedDatapath,
  resources: EncodedResource[],
  removed: { typeUrl: string; name: string }[] = [],
): Promise<string[] | undefined> {
  const parts = [TYPE_IPCACHE, TYPE_SERVICE, TYPE_ENDPOINT].map((typeUrl) =>
    DeltaDiscoveryResponse.fromPartial(
      part({
        typeUrl,
        revision: 1,
        nonce: typeUrl,
        resources: resources.filter((r) => r.typeUrl === typeUrl),
        removed: removed.filter((r) => r.typeUrl === typeUrl).map((r) => r.name),
      }),
    ),
  );
  const built = buildDelta(parts, store);
  if (!built.ok) return built.rejections.map((r) => r.message);
  // The owners the agent uses: its datapath's prefixes, the store's shards named on need.
  const t = translateDelta(built.delta, new RevisionKeyOwners(store, dp));
  if (!t.ok) return t.rejections.map((r) => `${r.message} [${r.resourceNames.join(',')}]`);
  try {
    await dp.apply(t.change);
  } catch (err) {
    if (!(err instanceof DatapathError)) throw err;
    return err.rejections.map((r) => `${r.message} [${r.resourceNames.join(',')}]`);
  }
  store.commit(built.delta);
  return undefined;
}

function held(store: ResourceStore): { typeUrl: string; name: string }[] {
  return [...store.values()].map((h) => ({ typeUrl: h.typeUrl, name: h.name }));
}

describe('translateDelta', () => {
  it('emits only the entries that change', async () => {
    const store = new ResourceStore();
    const dp = new EmulatedDatapath();
    const ep1 = endpoint('default/a', '10.1.0.1', [allow(1, 80), allow(2, 81)]);
    expect(
      await applyRevision(store, dp, [
        shard(0, [
          ['10.1.0.1/32', 1],
          ['10.1.0.2/32', 2],
        ]),
        ep1,
      ]),
    ).toBeUndefined();

    const ep2 = endpoint('default/a', '10.1.0.1', [allow(1, 80), allow(3, 82)]);
    const parts = [
      DeltaDiscoveryResponse.fromPartial(
        part({
          typeUrl: TYPE_IPCACHE,
          revision: 2,
          nonce: 'x',
          resources: [
            shard(0, [
              ['10.1.0.1/32', 1],
              ['10.1.0.2/32', 5],
            ]),
          ],
        }),
      ),
      DeltaDiscoveryResponse.fromPartial(
        part({ typeUrl: TYPE_ENDPOINT, revision: 2, nonce: 'y', resources: [ep2], complete: true }),
      ),
    ];
    const built = buildDelta(parts, store);
    if (!built.ok) throw new Error('unexpected');
    const t = translateDelta(built.delta, store);
    if (!t.ok) throw new Error('unexpected');
    expect(t.change.ipcache).toEqual({
      upserts: [{ prefix: '10.1.0.2/32', identity: 5, resource: 'ipcache/0' }],
      deletes: [],
    });
    expect(t.change.endpoints).toEqual({ upserts: [], deletes: [] }); // metadata unchanged
    expect(t.change.policies).toEqual([
      {
        endpoint: 'eu/default/a',
        resource: 'endpoint/eu/default/a',
        upserts: [allow(3, 82)],
        deletes: [{ direction: 1, identity: 2, protocol: 6, portLow: 81, portHigh: 81 }],
      },
    ]);
  });

  it('moves a prefix between shards in one revision without rewriting it', async () => {
    const store = new ResourceStore();
    const dp = new EmulatedDatapath();
    await applyRevision(store, dp, [shard(0, [['10.1.0.1/32', 1]]), shard(1, [])]);
    const parts = [
      DeltaDiscoveryResponse.fromPartial(
        part({
          typeUrl: TYPE_IPCACHE,
          revision: 2,
          nonce: 'x',
          resources: [shard(0, []), shard(1, [['10.1.0.1/32', 1]])],
          complete: true,
        }),
      ),
    ];
    const built = buildDelta(parts, store);
    if (!built.ok) throw new Error('unexpected');
    const t = translateDelta(built.delta, store);
    expect(t).toEqual({
      ok: true,
      change: expect.objectContaining({ ipcache: { upserts: [], deletes: [] } }),
    });
    store.commit(built.delta);
    expect(store.ipcacheOwner('10.1.0.1/32')).toBe('ipcache/1');
  });

  it("keeps the store's prefix owners right as prefixes stay, move between shards and vanish", async () => {
    const prefixes = Array.from({ length: 6 }, (_, i) => `10.6.0.${i}/32`);
    // Per revision, each prefix in shard 0, 1 or 2, or in none.
    const revision = fc.array(fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }), {
      minLength: 6,
      maxLength: 6,
    });
    await fc.assert(
      fc.asyncProperty(fc.array(revision, { minLength: 1, maxLength: 6 }), async (revisions) => {
        const store = new ResourceStore();
        const dp = new EmulatedDatapath();
        for (const where of revisions) {
          const shards = [0, 1, 2].map((s) =>
            shard(
              s,
              prefixes.flatMap((p, i): [string, number][] => (where[i] === s ? [[p, 7]] : [])),
            ),
          );
          expect(await applyRevision(store, dp, shards)).toBeUndefined();
          for (const [i, p] of prefixes.entries()) {
            const s = where[i];
            expect(store.ipcacheOwner(p)).toBe(s === undefined ? undefined : `ipcache/${s}`);
          }
          expect(dp.digest()).toBe(expectedDigest(shards));
        }
      }),
      { numRuns: 80 },
    );
  });

  // Shards as values (decoded), and as bytes: read in place when in prefix order (sorted here), else decoded.
  it.each(['decoded', 'bytes', 'sorted bytes'] as const)(
    'translates ipcache shards as a model of the held and resulting prefixes says, in any entry order (%s)',
    (form) => {
      const prefixes = Array.from({ length: 5 }, (_, i) => `10.7.0.${i}/32`);
      const names = ['ipcache/0', 'ipcache/1', 'ipcache/2'];
      const entry = fc.record({
        prefix: fc.constantFrom(...prefixes),
        identity: fc.integer({ min: 1, max: 2 }),
      });
      // Held: each prefix in at most one shard (held state is valid), entries in any order.
      const heldShards = fc
        .tuple(
          fc.array(fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }), {
            minLength: 5,
            maxLength: 5,
          }),
          fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 5, maxLength: 5 }),
          fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        )
        .map(([where, ids, reversed]) =>
          names.map((_, s) => {
            const es = prefixes.flatMap((prefix, i) =>
              where[i] === s ? [{ prefix, identity: ids[i]! }] : [],
            );
            return reversed[s] ? es.reverse() : es;
          }),
        );
      // Per shard: untouched, removed, or replaced by any entries (repeats and clashes included).
      const step = fc.oneof(
        fc.constant<'keep' | 'remove'>('keep'),
        fc.constant<'keep' | 'remove'>('remove'),
        fc.array(entry, { maxLength: 4 }),
      );
      fc.assert(
        fc.property(heldShards, fc.array(step, { minLength: 3, maxLength: 3 }), (held, steps) => {
          const value = (
            s: number,
            entries: { prefix: string; identity: number }[],
          ): ResourceValue => {
            if (form === 'decoded') return { typeUrl: TYPE_IPCACHE, value: { shard: s, entries } };
            const es =
              form === 'sorted bytes'
                ? [...entries].sort((a, b) => compareStrings(a.prefix, b.prefix))
                : entries;
            return ShardBytes.fromPayload(IpcacheShard.encode({ shard: s, entries: es }).finish());
          };
          const owner = new Map<string, string>();
          held.forEach((es, s) => es.forEach((e) => owner.set(e.prefix, names[s]!)));
          const delta: Parameters<typeof translateDelta>[0] = { updates: [], removals: [] };
          const result: { prefix: string; identity: number }[][] = [];
          steps.forEach((st, s) => {
            const before = held[s]!.length > 0 ? value(s, held[s]!) : undefined;
            if (st === 'keep') result.push(held[s]!);
            else if (st === 'remove') {
              result.push([]);
              if (before !== undefined)
                delta.removals.push({ typeUrl: TYPE_IPCACHE, name: names[s]!, before });
            } else {
              result.push(st);
              delta.updates.push({
                typeUrl: TYPE_IPCACHE,
                name: names[s]!,
                version: 'v',
                before,
                after: value(s, st),
              });
            }
          });
          const t = translateDelta(delta, {
            ipcacheOwner: (p) => owner.get(p),
            endpointOwner: () => undefined,
            serviceOwner: () => undefined,
          });
          const count = new Map<string, number>();
          for (const e of result.flat()) count.set(e.prefix, (count.get(e.prefix) ?? 0) + 1);
          const clashing = [...count]
            .filter(([, n]) => n > 1)
            .map(([p]) => p)
            .sort();
          if (clashing.length > 0) {
            // Refused, naming exactly the prefixes two resources (or one, twice) would hold.
            expect(t.ok).toBe(false);
            if (t.ok) return;
            const named = new Set(t.rejections.map((r) => /"([^"]+)"/.exec(r.message)![1]!));
            expect([...named].sort()).toEqual(clashing);
            return;
          }
          expect(t.ok).toBe(true);
          if (!t.ok) return;
          const before = new Map(held.flat().map((e) => [e.prefix, e.identity]));
          const after = new Map(result.flat().map((e) => [e.prefix, e.identity]));
          // Only what changes: deletes are exactly the prefixes gone, upserts exactly the new or changed ones.
          expect([...t.change.ipcache.deletes].sort()).toEqual(
            [...before.keys()].filter((p) => !after.has(p)).sort(),
          );
          const upserts = t.change.ipcache.upserts.map((u) => [u.prefix, u.identity, u.resource]);
          const owners = new Map(result.flatMap((es, s) => es.map((e) => [e.prefix, names[s]!])));
          expect(upserts.sort()).toEqual(
            [...after]
              .filter(([p, id]) => before.get(p) !== id)
              .map(([p, id]) => [p, id, owners.get(p)])
              .sort(),
          );
        }),
        { numRuns: 1000 },
      );
    },
  );

  it('refuses a key claimed by two resources, naming the newcomer', async () => {
    const store = new ResourceStore();
    const dp = new EmulatedDatapath();
    await applyRevision(store, dp, [shard(0, [['10.1.0.1/32', 1]])]);
    const errs = await applyRevision(store, dp, [shard(1, [['10.1.0.1/32', 2]])]);
    expect(errs).toEqual([
      'ipcache prefix "10.1.0.1/32" of ipcache/1 is already held by ipcache/0 [ipcache/1]',
    ]);
    // Shard 0 is re-sent keeping the prefix while shard 1 claims it: both are named.
    expect(
      await applyRevision(store, dp, [
        shard(0, [
          ['10.1.0.1/32', 1],
          ['10.1.0.9/32', 1],
        ]),
        shard(1, [['10.1.0.1/32', 2]]),
      ]),
    ).toEqual([
      'ipcache prefix "10.1.0.1/32" is claimed more than once (by ipcache/0, ipcache/1) [ipcache/0,ipcache/1]',
    ]);
    const both = await applyRevision(store, dp, [
      endpoint('default/a', '10.1.0.1'),
      encodeAs('endpoint/other-name', endpoint('default/a', '10.1.0.1')),
    ]);
    expect(both).toEqual([
      'endpoint "eu/default/a" is claimed more than once (by endpoint/eu/default/a, endpoint/other-name) [endpoint/eu/default/a,endpoint/other-name]',
    ]);
    expect(dp.digest()).toBe(expectedDigest([shard(0, [['10.1.0.1/32', 1]])]));
  });

  it('takes over prefixes adopted from a previous agent that no resource owns, and still refuses a held one', async () => {
    // A restarted agent: the maps hold what the last process wrote, its store holds nothing.
    const maps = new EmulatedMaps();
    maps.ipcache.set('10.1.0.1/32', 1);
    maps.ipcache.set('10.1.0.2/32', 1);
    const store = new ResourceStore();
    const dp = new EmulatedDatapath({ maps });
    expect(dp.holdsIpcachePrefix('10.1.0.1/32')).toBe(true);
    expect(await applyRevision(store, dp, [shard(0, [['10.1.0.1/32', 2]])])).toBeUndefined();
    expect(store.ipcacheOwner('10.1.0.1/32')).toBe('ipcache/0');
    // The second adopted prefix is still nobody's; the first now is shard 0's.
    expect(
      await applyRevision(store, dp, [
        shard(1, [
          ['10.1.0.2/32', 3],
          ['10.1.0.1/32', 3],
        ]),
      ]),
    ).toEqual([
      'ipcache prefix "10.1.0.1/32" of ipcache/1 is already held by ipcache/0 [ipcache/1]',
    ]);
    expect(await applyRevision(store, dp, [shard(1, [['10.1.0.2/32', 3]])])).toBeUndefined();
    expect(store.ipcacheOwner('10.1.0.2/32')).toBe('ipcache/1');
  });

  it("looks up a prefix's owner only when the datapath already holds it, building the index once per revision", async () => {
    const store = new ResourceStore();
    const dp = new EmulatedDatapath();
    const indexes = vi.spyOn(store, 'ipcacheOwners');
    await applyRevision(store, dp, [
      shard(0, [['10.1.0.1/32', 1]]),
      shard(1, [['10.1.0.2/32', 1]]),
    ]);
    // New addresses, and a shard that keeps its prefix: no index of the held prefixes.
    await applyRevision(store, dp, [
      shard(0, [
        ['10.1.0.1/32', 2],
        ['10.1.0.3/32', 2],
      ]),
      shard(2, [['10.1.0.4/32', 2]]),
    ]);
    expect(indexes).not.toHaveBeenCalled();
    // Two prefixes other shards hold, in one revision: one index, both refusals named.
    expect(
      await applyRevision(store, dp, [
        shard(3, [
          ['10.1.0.2/32', 3],
          ['10.1.0.4/32', 3],
        ]),
      ]),
    ).toEqual([
      'ipcache prefix "10.1.0.2/32" of ipcache/3 is already held by ipcache/1 [ipcache/3]',
      'ipcache prefix "10.1.0.4/32" of ipcache/3 is already held by ipcache/2 [ipcache/3]',
    ]);
    expect(indexes).toHaveBeenCalledTimes(1);
  });

  it('refuses duplicate policy keys in one endpoint, new or held, and changes nothing', async () => {
    const store = new ResourceStore();
    const dp = new EmulatedDatapath();
    // A new endpoint: refused by the datapath's checks (translation leaves new entries unindexed).
    expect(
      await applyRevision(store, dp, [
        endpoint('default/a', '10.1.0.1', [allow(1, 80), allow(2, 81), allow(1, 80)]),
      ]),
    ).toEqual([
      'policy key of eu/default/a "1|1|6|80|80" appears more than once in one change [endpoint/eu/default/a]',
    ]);
    expect(dp.counts()).toMatchObject({ endpoints: 0, policyEntries: 0 });
    expect(held(store)).toEqual([]);
    // A held endpoint: refused by the translation's diff.
    const a = endpoint('default/a', '10.1.0.1', [allow(1, 80)]);
    expect(await applyRevision(store, dp, [a])).toBeUndefined();
    const errs = await applyRevision(store, dp, [
      endpoint('default/a', '10.1.0.1', [allow(3, 82), allow(3, 82)]),
    ]);
    expect(errs).toHaveLength(1);
    expect(errs![0]).toMatch(/more than one policy entry .* \[endpoint\/eu\/default\/a\]$/);
    expect(dp.digest()).toBe(expectedDigest([a]));
  });

  it('diffs a policy map the same with keys packed into numbers as with key strings', () => {
    // Against an oracle written from the rules. A key no packed form holds (a
    // port above 65535) on either side makes translateDelta compare strings.
    type Entry = PolicyEntry;
    const id = (e: Entry): string =>
      `${e.direction}|${e.identity}|${e.protocol}|${e.portLow}|${e.portHigh}`;
    const keyOf = (e: Entry) => ({
      direction: e.direction,
      identity: e.identity,
      protocol: e.protocol,
      portLow: e.portLow,
      portHigh: e.portHigh,
    });
    const entryArb = fc.record({
      direction: fc.constantFrom(Direction.DIRECTION_INGRESS, Direction.DIRECTION_EGRESS),
      identity: fc.constantFrom(0x10100, 0x10101, 0xff000001),
      protocol: fc.constantFrom(6, 17),
      portLow: fc.constantFrom(0, 80),
      portHigh: fc.constantFrom(0, 80, 443),
      verdict: fc.constantFrom(Verdict.VERDICT_ALLOW, Verdict.VERDICT_DENY),
    });
    const odd: Entry = {
      direction: Direction.DIRECTION_INGRESS,
      identity: 0x10100,
      protocol: 6,
      portLow: 1,
      portHigh: 70_000,
      verdict: Verdict.VERDICT_ALLOW,
    };
    const ep = (entries: Entry[]) => ({
      typeUrl: TYPE_ENDPOINT,
      value: {
        cluster: 'eu',
        namespace: 'default',
        name: 'a',
        identity: 0x10100,
        ips: ['10.1.0.1'],
        namedPorts: [],
        ingressEnforced: true,
        egressEnforced: false,
        entries,
      },
    });
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 14 }),
        fc.array(entryArb, { maxLength: 14 }),
        fc.constantFrom('none', 'before', 'after', 'both'),
        fc.boolean(),
        (beforeRaw, afterRaw, oddSide, held) => {
          // What an agent holds was checked: no key twice.
          const before: Entry[] = [...new Map(beforeRaw.map((e) => [id(e), e])).values()];
          const after: Entry[] = [...afterRaw];
          if (oddSide === 'before' || oddSide === 'both') before.push(odd);
          if (oddSide === 'after' || oddSide === 'both') after.push({ ...odd });
          const olds = held ? before : [];
          const t = translateDelta(
            {
              updates: [
                {
                  typeUrl: TYPE_ENDPOINT,
                  name: 'endpoint/eu/default/a',
                  version: 'v2',
                  before: held ? (ep(before) as never) : undefined,
                  after: ep(after) as never,
                },
              ],
              removals: [],
            },
            new ResourceStore(),
          );
          const seen = new Set<string>();
          const repeats = after.filter((e) => seen.size === seen.add(id(e)).size).length;
          if (repeats > 0 && olds.length === 0) {
            // Nothing held: every entry goes through, and the datapath's checks refuse the repeats.
            expect(t.ok).toBe(true);
            if (!t.ok) return;
            expect(t.change.policies[0]?.upserts).toEqual(after);
            const refused = checkChange(t.change, EMPTY_VIEW, new EmulatedDatapath().capacity);
            expect(refused.filter((r) => /appears more than once/.test(r.message))).toHaveLength(
              repeats,
            );
            return;
          }
          if (repeats > 0) {
            expect(t.ok).toBe(false);
            if (!t.ok)
              expect(t.rejections.filter((r) => /more than one/.test(r.message))).toHaveLength(
                repeats,
              );
            return;
          }
          expect(t.ok).toBe(true);
          if (!t.ok) return;
          const next = new Map(after.map((e) => [id(e), e]));
          const old = new Map(olds.map((e) => [id(e), e]));
          const pm = t.change.policies.find((p) => p.endpoint === 'eu/default/a');
          expect(pm?.deletes ?? []).toEqual(olds.filter((e) => !next.has(id(e))).map(keyOf));
          expect(pm?.upserts ?? []).toEqual(
            after.filter((e) => old.get(id(e))?.verdict !== e.verdict),
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  it('keeps the datapath digest equal to the digest of the held resources (as the control plane computes it)', async () => {
    const prefixes = Array.from({ length: 10 }, (_, i) => `10.4.0.${i}/32`);
    const pods = ['a', 'b', 'c'];
    const revision = fc.record({
      // Each prefix lives in shard (i % 3) so shards never clash; the identity may change or the prefix vanish.
      prefixes: fc.array(fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), {
        minLength: 10,
        maxLength: 10,
      }),
      pods: fc.array(
        fc.option(
          fc.record({
            identity: fc.integer({ min: 0x10100, max: 0x10102 }),
            rules: fc.uniqueArray(fc.integer({ min: 1, max: 5 }), { maxLength: 4 }),
          }),
          { nil: undefined },
        ),
        { minLength: 3, maxLength: 3 },
      ),
      services: fc.uniqueArray(fc.constantFrom('10.4.0.1', '10.4.0.2', '10.4.0.3'), {
        maxLength: 3,
      }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(revision, { minLength: 1, maxLength: 5 }), async (revisions) => {
        const store = new ResourceStore();
        const dp = new EmulatedDatapath();
        for (const r of revisions) {
          const shards = [0, 1, 2].map((s) =>
            shard(
              s,
              prefixes.flatMap((p, i): [string, number][] => {
                const id = r.prefixes[i];
                return i % 3 === s && id !== undefined ? [[p, id]] : [];
              }),
            ),
          );
          const eps = pods.flatMap((pod, i) => {
            const spec = r.pods[i];
            return spec === undefined
              ? []
              : [
                  endpoint(
                    `default/${pod}`,
                    `10.5.0.${i}`,
                    spec.rules.map((id) => allow(id, 80)),
                    { identity: spec.identity },
                  ),
                ];
          });
          const svcs =
            r.services.length > 0 ? [service('default', 'web', [...r.services].sort())] : [];
          const next = [...shards, ...eps, ...svcs];
          const names = new Set(next.map((x) => `${x.typeUrl}|${x.name}`));
          const removed = held(store).filter((h) => !names.has(`${h.typeUrl}|${h.name}`));
          expect(await applyRevision(store, dp, next, removed)).toBeUndefined();
          expect(dp.digest()).toBe(expectedDigest(next));
          expect(await dp.verify()).toBe(dp.digest());
          expect(store.size).toBe(next.length);
        }
      }),
      { numRuns: 80 },
    );
  });
});

function encodeAs(name: string, r: EncodedResource): EncodedResource {
  // Same payload under another resource name: decode to make sure it is a real endpoint.
  decodeResource(r.typeUrl, r.payload);
  return { ...r, name };
}
