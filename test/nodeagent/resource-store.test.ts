import { describe, expect, it } from 'vitest';
import { compareStrings, decodeResource, type EncodedResource } from '../../common/index.js';
import {
  EmulatedDatapath,
  ResourceStore,
  RevisionApplier,
  decodeResponse,
} from '../../nodeagent/index.js';
import { DeltaDiscoveryResponse, TYPE_ENDPOINT, TYPE_IPCACHE } from '../../proto/index.js';
import { endpoint, part, shard } from './fixtures.js';

const clock = { now: () => performance.now() };

/** The bytes of one complete response part, as the agent receives them. */
function wire(typeUrl: string, resources: EncodedResource[], revision: number): Uint8Array {
  const p = part({ typeUrl, revision, nonce: `n${revision}`, resources, complete: true });
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
});
