// Responses are assembled from a per-node head and resource entries encoded
// once and shared: what an agent decodes must be exactly the message.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeResource, type EncodedResource } from '../../common/index.js';
import { ResponseEncoder } from '../../controlplane/xds/index.js';
import { DeltaDiscoveryResponse, TYPE_ENDPOINT, TYPE_IPCACHE } from '../../proto/index.js';

const shard = (s: number, identity: number): EncodedResource =>
  encodeResource(`ipcache/${s}`, {
    typeUrl: TYPE_IPCACHE,
    value: { shard: s, entries: [{ prefix: `10.0.${s}.1/32`, identity }] },
  });

/** The message with payloads as hex, so decoded and original compare field by field. */
const plain = (m: DeltaDiscoveryResponse) => ({
  ...m,
  resources: m.resources.map((r) => ({ ...r, payload: Buffer.from(r.payload).toString('hex') })),
});

describe('ResponseEncoder', () => {
  it('decodes to the same message as encoding it whole', () => {
    // One encoder for every case: heads it keeps for a revision must never leak into another head.
    const enc = new ResponseEncoder();
    const headArb = fc.record({
      typeUrl: fc.constantFrom(TYPE_IPCACHE, TYPE_ENDPOINT),
      removedResources: fc.oneof(
        fc.constant<string[]>([]),
        fc.array(fc.string(), { maxLength: 3 }),
      ),
      nonce: fc.uuid(),
      meshRevision: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 ** 40 })),
      revisionComplete: fc.boolean(),
      systemVersionInfo: fc.oneof(fc.constantFrom('', '1', '2'), fc.string()),
      traceContext: fc.dictionary(fc.string({ minLength: 1 }), fc.string()),
    });
    const shardsArb = fc.array(fc.tuple(fc.nat(255), fc.integer({ min: 256, max: 9999 })), {
      maxLength: 5,
    });
    fc.assert(
      fc.property(headArb, shardsArb, (head, shards) => {
        const resources = shards.map(([s, id]) => shard(s, id));
        const bytes = enc.encode(head, resources);
        const whole = {
          ...head,
          resources: resources.map((r) => ({
            name: r.name,
            version: r.version,
            payload: r.payload,
          })),
        };
        // Against the whole message's own encoding: strings that UTF-8 cannot
        // carry (lone surrogates) come back the same way from both.
        const expected = DeltaDiscoveryResponse.decode(
          DeltaDiscoveryResponse.encode(whole).finish(),
        );
        expect(plain(DeltaDiscoveryResponse.decode(bytes))).toEqual(plain(expected));
      }),
      { numRuns: 500 },
    );
  });

  it('encodes a resource once and reuses its bytes for every node', () => {
    const enc = new ResponseEncoder();
    const r = shard(1, 300);
    const head = (nonce: string) => ({
      typeUrl: TYPE_IPCACHE,
      removedResources: [],
      nonce,
      meshRevision: 7,
      revisionComplete: true,
      systemVersionInfo: '7',
      traceContext: {},
    });
    const a = enc.encode(head('a'), [r]);
    const b = enc.encode(head('b'), [r]);
    // Same tail (the shared entry), different heads.
    const tail = (x: Buffer): string => x.subarray(x.length - r.payload.length).toString('hex');
    expect(tail(a)).toBe(tail(b));
    // The fields every node of the revision shares come first, the same bytes for both.
    const shared = DeltaDiscoveryResponse.encode({
      ...head(''),
      resources: [],
    }).finish().length;
    expect(a.subarray(0, shared).equals(b.subarray(0, shared))).toBe(true);
    expect(DeltaDiscoveryResponse.decode(a).nonce).toBe('a');
    expect(plain(DeltaDiscoveryResponse.decode(b)).resources).toEqual([
      { name: r.name, version: r.version, payload: r.payload.toString('hex') },
    ]);
  });
});
