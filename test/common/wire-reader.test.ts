import fc from 'fast-check';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { WireReader } from '../../common/index.js';
import { IpcacheShard, ServiceImport } from '../../proto/index.js';

describe('WireReader', () => {
  it('decodes every message as the library reader does, ASCII or not, from a Buffer or a plain view', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
    );
    const shard = fc.record({
      shard: fc.nat(),
      entries: fc.array(fc.record({ prefix: text, identity: fc.nat() }), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(shard, text, fc.boolean(), (s, name, plain) => {
        const bytes = IpcacheShard.encode(s).finish();
        const view = plain ? new Uint8Array(bytes) : Buffer.from(bytes);
        expect(IpcacheShard.decode(new WireReader(view))).toEqual(
          IpcacheShard.decode(new BinaryReader(bytes)),
        );
        const svc = ServiceImport.fromPartial({ namespace: name, name, ips: [name] });
        const svcBytes = ServiceImport.encode(svc).finish();
        expect(ServiceImport.decode(new WireReader(svcBytes))).toEqual(
          ServiceImport.decode(svcBytes),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('reads a string inside a larger buffer without reading past its end', () => {
    const bytes = IpcacheShard.encode({
      shard: 1,
      entries: [{ prefix: '10.0.0.1/32', identity: 7 }],
    }).finish();
    // The message sits between other bytes, as a field of a larger message does.
    const outer = Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('10.0.0.2/32')]);
    const inner = outer.subarray(2, 2 + bytes.length);
    const plain = new Uint8Array(outer.buffer, outer.byteOffset + 2, bytes.length);
    for (const view of [inner, plain])
      expect(IpcacheShard.decode(new WireReader(view))).toEqual({
        shard: 1,
        entries: [{ prefix: '10.0.0.1/32', identity: 7 }],
      });
  });

  it('refuses a truncated message as the library reader does', () => {
    // Identity 0 is not encoded: the prefix is the last field, so a cut inside it is the string's to refuse.
    const bytes = IpcacheShard.encode({
      shard: 1,
      entries: [{ prefix: '10.0.0.1/32', identity: 0 }],
    }).finish();
    for (let cut = 1; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      let expected: unknown;
      try {
        expected = IpcacheShard.decode(part);
      } catch (err) {
        expected = err;
      }
      if (expected instanceof Error)
        expect(() => IpcacheShard.decode(new WireReader(part))).toThrow(expected.message);
      else expect(IpcacheShard.decode(new WireReader(part))).toEqual(expected);
    }
  });
});
