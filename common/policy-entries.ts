import type { PolicyEntry } from '../proto/index.js';
import { MeshError } from './errors.js';

/**
 * Policy map entries packed for the wire (EndpointPolicyPayload.entries in
 * resources.proto): 12 bytes each, little-endian — identity u32, port_low
 * u16, port_high u16, protocol u8, direction u8, verdict u8, a reserved 0.
 * A map of 100,000 entries decoded one PolicyEntry message at a time spent
 * most of the agent's decode in varints and the reader; these are read with
 * fixed offsets.
 */
export const PACKED_POLICY_ENTRY_BYTES = 12;

const FIELDS: readonly [keyof PolicyEntry, number][] = [
  ['identity', 0xffff_ffff],
  ['portLow', 0xffff],
  ['portHigh', 0xffff],
  ['protocol', 0xff],
  ['direction', 0xff],
  ['verdict', 0xff],
];

/** Packs `entries` in their order; `what` names the resource in an error (a field out of its packed range). */
export function packPolicyEntries(entries: readonly PolicyEntry[], what: string): Uint8Array {
  const out = new Uint8Array(entries.length * PACKED_POLICY_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  for (let i = 0, o = 0; i < entries.length; i++, o += PACKED_POLICY_ENTRY_BYTES) {
    const e = entries[i]!;
    for (const [field, max] of FIELDS) {
      const v = e[field];
      if (!Number.isInteger(v) || v < 0 || v > max)
        throw new MeshError(
          'VALIDATION',
          `${what}: policy entry ${i}: ${field} ${v} is outside 0..${max}`,
        );
    }
    view.setUint32(o, e.identity, true);
    view.setUint16(o + 4, e.portLow, true);
    view.setUint16(o + 6, e.portHigh, true);
    out[o + 8] = e.protocol;
    out[o + 9] = e.direction;
    out[o + 10] = e.verdict;
  }
  return out;
}

/** The entries `bytes` packs, in order; a length that is not whole entries, or a reserved byte set, is refused. */
export function unpackPolicyEntries(bytes: Uint8Array): PolicyEntry[] {
  if (bytes.length % PACKED_POLICY_ENTRY_BYTES !== 0)
    throw new MeshError(
      'VALIDATION',
      `packed policy entries: ${bytes.length} bytes is not a whole number of ${PACKED_POLICY_ENTRY_BYTES}-byte entries`,
    );
  const n = bytes.length / PACKED_POLICY_ENTRY_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: PolicyEntry[] = []; // pushed: a packed array, not a holey one
  for (let i = 0, o = 0; i < n; i++, o += PACKED_POLICY_ENTRY_BYTES) {
    if (bytes[o + 11] !== 0)
      throw new MeshError('VALIDATION', `packed policy entry ${i}: reserved byte is not 0`);
    // PolicyEntry's fields in its generated order: one hidden class with the decoder's objects.
    out.push({
      direction: bytes[o + 9]!,
      identity: view.getUint32(o, true),
      protocol: bytes[o + 8]!,
      portLow: view.getUint16(o + 4, true),
      portHigh: view.getUint16(o + 6, true),
      verdict: bytes[o + 10]!,
    });
  }
  return out;
}
