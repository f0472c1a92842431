import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareStrings, decodeResource } from '../../common/index.js';
import { EntryCursor, ShardBytes } from '../../nodeagent/index.js';
import { IpcacheShard, TYPE_IPCACHE, type IpcacheEntry } from '../../proto/index.js';

// A pure module: ipcache shard bytes read in place, against the generated decoder.

function encode(entries: IpcacheEntry[], shard = 3): Uint8Array {
  return IpcacheShard.encode({ shard, entries }).finish();
}

function decoded(payload: Uint8Array): IpcacheEntry[] {
  const r = decodeResource(TYPE_IPCACHE, payload);
  if (r.typeUrl !== TYPE_IPCACHE) throw new Error('not a shard');
  return r.value.entries;
}

/** The entries the translation reads from `s`: in place (EntryCursor) when direct, else decoded. */
function read(s: ShardBytes): IpcacheEntry[] {
  if (!s.direct) return s.value.entries.map((e) => ({ prefix: e.prefix, identity: e.identity }));
  const c = new EntryCursor();
  const out: IpcacheEntry[] = [];
  for (let at = c.reset(s.bytes, s.received); at; at = c.next())
    out.push({ prefix: c.prefix(), identity: c.identity });
  return out;
}

/** Hand-written protobuf: a varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** Hand-written protobuf: an entry of the given raw fields. */
function entry(...fields: number[][]): number[] {
  const body = fields.flat();
  return [0x12, ...varint(body.length), ...body];
}

const prefixField = (p: string): number[] => {
  const utf8 = Buffer.from(p, 'utf8');
  return [0x0a, ...varint(utf8.length), ...utf8];
};
const identityField = (id: number): number[] => [0x10, ...varint(id)];

describe('ShardBytes', () => {
  const prefix = fc.oneof(
    fc.ipV4().map((ip) => `${ip}/32`),
    fc.ipV6().map((ip) => `${ip}/128`),
    fc.string({ maxLength: 20 }),
  );
  const entries = fc.array(
    fc.record({
      prefix,
      identity: fc.oneof(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      ),
    }),
    { maxLength: 8 },
  );

  it('reads the entries the generated decoder reads, in place exactly when they are in prefix order and ASCII', () => {
    fc.assert(
      fc.property(entries, fc.boolean(), (es, sort) => {
        const list = sort ? [...es].sort((a, b) => compareStrings(a.prefix, b.prefix)) : es;
        const payload = encode(list);
        const s = ShardBytes.fromPayload(payload);
        const ordered = list.every((e, i) => i === 0 || list[i - 1]!.prefix <= e.prefix);
        // eslint-disable-next-line no-control-regex
        const ascii = list.every((e) => /^[\x00-\x7f]*$/.test(e.prefix));
        expect(s.direct).toBe(ordered && ascii);
        expect(read(s)).toEqual(decoded(payload));
        // What the store keeps (the bytes) reads back the same.
        expect(read(new ShardBytes(s.bytes, s.direct))).toEqual(decoded(payload));
      }),
      { numRuns: 500 },
    );
  });

  it('leaves any other encoding to the decoder, which reads it the same', () => {
    const p = prefixField('10.0.0.1/32');
    const cases: [string, number[]][] = [
      ['an unknown field in an entry', entry(p, identityField(7), [0x18, 1])],
      ['an unknown field in the shard', [...entry(p, identityField(7)), 0x1a, 1, 0x41]],
      ['the identity before the prefix, twice', entry(identityField(7), p, identityField(9))],
      ['the prefix twice', entry(p, prefixField('10.0.0.2/32'))],
      ['an identity as a ten-byte varint', entry(p, [0x10, ...varint(2 ** 35 + 5)])],
      ['a non-ASCII prefix', entry(prefixField('10.0.0.\u00e9/32'))],
      ['a prefix of 128 bytes', entry(prefixField('1'.repeat(128)))],
    ];
    for (const [what, bytes] of cases) {
      const payload = Uint8Array.from(bytes);
      const s = ShardBytes.fromPayload(payload);
      expect(s.direct, what).toBe(false);
      expect(read(s), what).toEqual(decoded(payload));
    }
    // The encoding the control plane writes, for contrast (identity 0 omitted, shard number first).
    const canonical = Uint8Array.from([
      0x08,
      3,
      ...entry(p, identityField(300)),
      ...entry(prefixField('10.0.0.2/32')),
    ]);
    const s = ShardBytes.fromPayload(canonical);
    expect(s.direct).toBe(true);
    expect(read(s)).toEqual([
      { prefix: '10.0.0.1/32', identity: 300 },
      { prefix: '10.0.0.2/32', identity: 0 },
    ]);
  });

  it('refuses bytes that are not a shard, as the decoder does', () => {
    const whole = encode([{ prefix: '10.0.0.1/32', identity: 7 }]);
    for (const bad of [whole.subarray(0, whole.length - 2), Uint8Array.from([0x12, 0x05, 0x0a])]) {
      expect(() => decodeResource(TYPE_IPCACHE, bad)).toThrow(/cannot decode/);
      expect(() => ShardBytes.fromPayload(bad)).toThrow(/cannot decode/);
    }
  });

  it('copies the payload: the received buffer may be reused', () => {
    const payload = encode([{ prefix: '10.0.0.1/32', identity: 7 }]);
    const s = ShardBytes.fromPayload(payload);
    const held = new ShardBytes(s.bytes, s.direct);
    payload.fill(0);
    expect(read(held)).toEqual([{ prefix: '10.0.0.1/32', identity: 7 }]);
  });
});
