import { describe, expect, it } from 'vitest';
import { compareStrings, decodeResource, type EncodedResource } from '../../common/index.js';
import {
  EmulatedDatapath,
  ResourceStore,
  RevisionApplier,
  ShardPool,
  decodeResponse,
} from '../../nodeagent/index.js';
import { DeltaDiscoveryResponse, TYPE_ENDPOINT, TYPE_IPCACHE } from '../../proto/index.js';
import { endpoint, part, shard } from './fixtures.js';

const clock = { now: () => performance.now() };

/** The bytes of one complete response part, as the agent receives them. */
function wire(
  typeUrl: string,
  resources: EncodedResource[],
  revision: number,
  removed: string[] = [],
): Uint8Array {
  const p = part({ typeUrl, revision, nonce: `n${revision}`, resources, removed, complete: true });
  return DeltaDiscoveryResponse.encode(DeltaDiscoveryResponse.fromPartial(p)).finish();
}

async function applyBytes(applier: RevisionApplier, bytes: Uint8Array, revision: number) {
  const part = decodeResponse(bytes);
  const out = await applier.apply({ revision, nonce: part.nonce, parts: [part], receivedAt: 0 });
  expect(out.kind).toBe('applied');
}

describe('ResourceStore', () => {
  it('holds what it received after the response buffer is reused, ipcache shards and others alike', async () => {
    const store = new ResourceStore();
    const datapath = new EmulatedDatapath();
    const applier = new RevisionApplier(store, datapath, clock);
    const s1 = shard(1, [
      ['10.0.0.1/32', 256],
      ['10.0.0.2/32', 257],
    ]);
    const s2 = shard(2, [['fd00::7/128', 300]]);
    const bytes = wire(TYPE_IPCACHE, [s1, s2], 1);
    await applyBytes(applier, bytes, 1);
    // The agent's gRPC buffers are reused once a message is handled: nothing may point into them.
    bytes.fill(0);

    for (const s of [s1, s2]) {
      const held = store.get(TYPE_IPCACHE, s.name);
      expect(held).toMatchObject({ typeUrl: TYPE_IPCACHE, name: s.name, version: s.version });
      // Held as its bytes (ShardBytes), read back as the shard received.
      expect(held?.value.typeUrl).toBe(TYPE_IPCACHE);
      expect(held?.value.value).toEqual(decodeResource(TYPE_IPCACHE, s.payload).value);
    }
    expect(store.ipcacheOwners()).toEqual(
      new Map([
        ['10.0.0.1/32', 'ipcache/1'],
        ['10.0.0.2/32', 'ipcache/1'],
        ['fd00::7/128', 'ipcache/2'],
      ]),
    );

    const ep = endpoint('prod/web', '10.0.0.1');
    const epBytes = wire(TYPE_ENDPOINT, [ep], 2);
    await applyBytes(applier, epBytes, 2);
    epBytes.fill(0);
    expect(store.get(TYPE_ENDPOINT, ep.name)?.value).toEqual(
      decodeResource(TYPE_ENDPOINT, ep.payload),
    );
    expect(store.versions().map((v) => v.name)).toEqual([ep.name, 'ipcache/1', 'ipcache/2']);
  });

  it('translates a replaced shard against what it held: only the changed prefix is written', async () => {
    const store = new ResourceStore();
    const datapath = new EmulatedDatapath();
    const applier = new RevisionApplier(store, datapath, clock);
    await applyBytes(
      applier,
      wire(
        TYPE_IPCACHE,
        [
          shard(1, [
            ['10.0.0.1/32', 256],
            ['10.0.0.2/32', 257],
          ]),
        ],
        1,
      ),
      1,
    );
    await applyBytes(
      applier,
      wire(
        TYPE_IPCACHE,
        [
          shard(1, [
            ['10.0.0.2/32', 258],
            ['10.0.0.3/32', 259],
          ]),
        ],
        2,
      ),
      2,
    );
    const { ipcache } = await datapath.read();
    expect(ipcache.sort((a, b) => compareStrings(a.prefix, b.prefix))).toEqual([
      { prefix: '10.0.0.2/32', identity: 258 },
      { prefix: '10.0.0.3/32', identity: 259 },
    ]);
  });

  it('shares held shards with the other stores of a ShardPool, and lets a version go once no store holds it', async () => {
    const pool = new ShardPool();
    const agents = [0, 1, 2].map((i) => {
      const store = new ResourceStore(i < 2 ? { shards: pool } : {});
      const datapath = new EmulatedDatapath();
      return { store, datapath, applier: new RevisionApplier(store, datapath, clock) };
    });
    const [a, b, alone] = agents as [(typeof agents)[0], (typeof agents)[0], (typeof agents)[0]];
    const s1 = shard(1, [['10.0.0.1/32', 256]]);
    const s2 = shard(2, [['10.0.0.2/32', 257]]);
    const s1b = shard(1, [['10.0.0.1/32', 999]]);
    // Each agent decodes its own bytes of the same response.
    for (const x of agents) await applyBytes(x.applier, wire(TYPE_IPCACHE, [s1, s2], 1), 1);
    expect(pool.size).toBe(2);
    expect(a.store.get(TYPE_IPCACHE, s1.name)).toBe(b.store.get(TYPE_IPCACHE, s1.name));
    expect(alone.store.get(TYPE_IPCACHE, s1.name)).not.toBe(a.store.get(TYPE_IPCACHE, s1.name));

    // One store moves on: the old version stays for the other, the new one is pooled.
    await applyBytes(a.applier, wire(TYPE_IPCACHE, [s1b], 2), 2);
    expect(pool.size).toBe(3);
    expect(a.store.get(TYPE_IPCACHE, s1.name)?.version).toBe(s1b.version);
    expect(b.store.get(TYPE_IPCACHE, s1.name)?.value.value).toEqual(
      decodeResource(TYPE_IPCACHE, s1.payload).value,
    );
    // The other follows: no store holds s1's old version.
    await applyBytes(b.applier, wire(TYPE_IPCACHE, [s1b], 2), 2);
    expect(pool.size).toBe(2);
    expect(a.store.get(TYPE_IPCACHE, s1.name)).toBe(b.store.get(TYPE_IPCACHE, s1.name));
    // Removed everywhere: gone from the pool.
    for (const x of [a, b]) await applyBytes(x.applier, wire(TYPE_IPCACHE, [], 3, [s2.name]), 3);
    expect(pool.size).toBe(1);
    for (const x of [a, b]) {
      expect(x.store.get(TYPE_IPCACHE, s2.name)).toBeUndefined();
      expect(x.datapath.digest()).not.toBe(alone.datapath.digest());
    }
    // What a pooled agent holds is what an unpooled one holds after the same revisions.
    await applyBytes(alone.applier, wire(TYPE_IPCACHE, [s1b], 2), 2);
    await applyBytes(alone.applier, wire(TYPE_IPCACHE, [], 3, [s2.name]), 3);
    for (const x of [a, b]) {
      expect(x.store.versions()).toEqual(alone.store.versions());
      expect(x.datapath.digest()).toBe(alone.datapath.digest());
    }
  });
});
