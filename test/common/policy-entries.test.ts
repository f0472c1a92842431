// EndpointPolicy resources on the wire: the entries packed, 12 bytes each, and back unchanged.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PACKED_POLICY_ENTRY_BYTES,
  decodeResource,
  encodeResource,
  packPolicyEntries,
  unpackPolicyEntries,
} from '../../common/index.js';
import {
  EndpointPolicy,
  EndpointPolicyPayload,
  TYPE_ENDPOINT,
  type PolicyEntry,
} from '../../proto/index.js';

const entry = fc.record({
  direction: fc.integer({ min: 0, max: 2 }),
  identity: fc.integer({ min: 0, max: 0xffff_ffff }),
  protocol: fc.integer({ min: 0, max: 255 }),
  portLow: fc.integer({ min: 0, max: 0xffff }),
  portHigh: fc.integer({ min: 0, max: 0xffff }),
  verdict: fc.integer({ min: 0, max: 3 }),
});

function endpoint(entries: PolicyEntry[]): EndpointPolicy {
  return {
    cluster: 'eu',
    namespace: 'billing',
    name: 'api-0',
    identity: 70_000,
    ips: ['10.1.0.5', 'fd00::5'],
    namedPorts: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ingressEnforced: true,
    egressEnforced: false,
    entries,
  };
}

describe('packed policy entries', () => {
  it('an endpoint policy resource decodes to exactly what was encoded, entries in order', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 200 }), (entries) => {
        const value = endpoint(entries);
        const r = encodeResource('endpoint/eu/billing/api-0', { typeUrl: TYPE_ENDPOINT, value });
        expect(decodeResource(TYPE_ENDPOINT, r.payload)).toEqual({ typeUrl: TYPE_ENDPOINT, value });
      }),
    );
  });

  it('carries each entry in 12 bytes, so the version is the content hash of the packed form', () => {
    const entries = Array.from({ length: 1000 }, (_, i) => ({
      direction: 1,
      identity: 65_536 + i,
      protocol: 6,
      portLow: 8080,
      portHigh: 8090,
      verdict: 1,
    }));
    const r = encodeResource('endpoint/eu/billing/api-0', {
      typeUrl: TYPE_ENDPOINT,
      value: endpoint(entries),
    });
    const payload = EndpointPolicyPayload.decode(r.payload);
    expect(payload.entries.length).toBe(1000 * PACKED_POLICY_ENTRY_BYTES);
    expect(payload.endpoint?.entries).toEqual([]);
    // The same content encodes to the same version; one changed verdict does not.
    const again = encodeResource('endpoint/eu/billing/api-0', {
      typeUrl: TYPE_ENDPOINT,
      value: endpoint(entries.map((e) => ({ ...e }))),
    });
    expect(again.version).toBe(r.version);
    const changed = entries.map((e, i) => (i === 500 ? { ...e, verdict: 2 } : e));
    expect(
      encodeResource('endpoint/eu/billing/api-0', {
        typeUrl: TYPE_ENDPOINT,
        value: endpoint(changed),
      }).version,
    ).not.toBe(r.version);
  });

  it('refuses to pack a field outside its packed width, naming the resource, entry and field', () => {
    const bad = {
      direction: 1,
      identity: 7,
      protocol: 6,
      portLow: 70_000,
      portHigh: 70_000,
      verdict: 1,
    };
    expect(() =>
      encodeResource('endpoint/eu/billing/api-0', {
        typeUrl: TYPE_ENDPOINT,
        value: endpoint([bad]),
      }),
    ).toThrow(
      'endpoint policy "endpoint/eu/billing/api-0": policy entry 0: portLow 70000 is outside 0..65535',
    );
    expect(() =>
      packPolicyEntries([{ ...bad, portLow: 1, portHigh: 1, protocol: 256 }], 'x'),
    ).toThrow('x: policy entry 0: protocol 256 is outside 0..255');
    expect(() =>
      packPolicyEntries([{ ...bad, portLow: 1, portHigh: 1, identity: -1 }], 'x'),
    ).toThrow('identity -1 is outside');
  });

  it('refuses a payload that is not whole entries, has a reserved byte set, or carries unpacked entries', () => {
    const one = packPolicyEntries(
      [{ direction: 2, identity: 9, protocol: 17, portLow: 53, portHigh: 53, verdict: 2 }],
      'x',
    );
    expect(unpackPolicyEntries(one)).toEqual([
      { direction: 2, identity: 9, protocol: 17, portLow: 53, portHigh: 53, verdict: 2 },
    ]);
    expect(() => unpackPolicyEntries(one.subarray(0, 11))).toThrow(
      '11 bytes is not a whole number of 12-byte entries',
    );
    const reserved = one.slice();
    reserved[11] = 1;
    expect(() => unpackPolicyEntries(reserved)).toThrow(
      'packed policy entry 0: reserved byte is not 0',
    );

    const wrapped = (p: EndpointPolicyPayload): Uint8Array =>
      EndpointPolicyPayload.encode(p).finish();
    const decode = (p: EndpointPolicyPayload): unknown => decodeResource(TYPE_ENDPOINT, wrapped(p));
    expect(() => decode({ endpoint: undefined, entries: Buffer.from(one) })).toThrow(
      /cannot decode meshplane\.v1\.EndpointPolicyPayload resource/,
    );
    const unpacked = endpoint([
      { direction: 1, identity: 1, protocol: 6, portLow: 1, portHigh: 1, verdict: 1 },
    ]);
    try {
      decode({ endpoint: unpacked, entries: Buffer.alloc(0) });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).cause).toBeInstanceOf(Error);
      expect(((err as Error).cause as Error).message).toBe(
        'endpoint.entries must be empty: entries travel packed',
      );
    }
  });
});
