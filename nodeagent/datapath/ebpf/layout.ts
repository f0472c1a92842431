import { isIP } from 'node:net';
import type { Verdict } from '../../../proto/index.js';
import type { EndpointRecord, PolicyKey, PolicyRecord, ServiceRecord } from '../types.js';

/**
 * The kernel maps' key and value layouts, declared once on this side: the
 * same structs as bpf/meshplane.h. test/nodeagent/ebpf-layout.privileged.test.ts
 * reads the compiled object's BTF and checks every struct size and field
 * offset below. Integers are host byte order (little-endian on the nodes we
 * build for); addresses are network order, IPv4 in the first 4 of 16 bytes.
 */

/** Bump together with MESHPLANE_LAYOUT_VERSION in bpf/meshplane.h. */
export const LAYOUT_VERSION = 4;

export interface FieldLayout {
  offset: number;
  size: number;
}

export interface StructLayout {
  size: number;
  fields: Record<string, FieldLayout>;
}

const f = (offset: number, size: number): FieldLayout => ({ offset, size });

export const EP_META_MAX = 2036;
export const SVC_NAME_MAX = 128;
export const SVC_DATA_MAX = 4092;

export const STRUCTS = {
  ipcache_key: { size: 24, fields: { prefixlen: f(0, 4), family: f(4, 1), addr: f(8, 16) } },
  ipcache_value: { size: 8, fields: { identity: f(0, 4), flags: f(4, 4) } },
  ep_ip_key: { size: 20, fields: { family: f(0, 1), addr: f(4, 16) } },
  ep_ip_value: {
    size: 12,
    fields: {
      slot: f(0, 4),
      identity: f(4, 4),
      ingress_enforced: f(8, 1),
      egress_enforced: f(9, 1),
    },
  },
  ep_info: {
    size: 2052,
    fields: {
      used: f(0, 4),
      identity: f(4, 4),
      ingress_enforced: f(8, 1),
      egress_enforced: f(9, 1),
      meta_len: f(10, 2),
      meta: f(12, EP_META_MAX),
    },
  },
  policy_key: {
    size: 12,
    fields: {
      identity: f(0, 4),
      direction: f(4, 1),
      protocol: f(5, 1),
      port_low: f(6, 2),
      port_high: f(8, 2),
    },
  },
  policy_value: { size: 4, fields: { verdict: f(0, 1) } },
  policy_digest_ctx: {
    size: 40,
    fields: {
      slot: f(0, 4),
      copy: f(4, 4),
      prefix_hi: f(8, 4),
      prefix_lo: f(12, 4),
      pending: f(16, 4),
      bytes: f(20, 4),
      sum: f(24, 8),
      count: f(32, 8),
    },
  },
  policy_range_key: {
    size: 16,
    fields: {
      prefixlen: f(0, 4),
      slot: f(4, 4),
      identity: f(8, 4),
      direction: f(12, 1),
      protocol: f(13, 1),
      port: f(14, 2),
    },
  },
  svc_key: { size: SVC_NAME_MAX, fields: { name: f(0, SVC_NAME_MAX) } },
  svc_value: { size: 4096, fields: { len: f(0, 4), data: f(4, SVC_DATA_MAX) } },
  config_value: {
    size: 16,
    fields: {
      active: f(0, 4),
      layout_version: f(4, 4),
      events_per_sec: f(8, 4),
      events_burst: f(12, 4),
    },
  },
  ct_key: {
    size: 40,
    fields: {
      saddr: f(0, 16),
      daddr: f(16, 16),
      sport: f(32, 2),
      dport: f(34, 2),
      proto: f(36, 1),
      family: f(37, 1),
      direction: f(38, 1),
    },
  },
  ct_value: {
    size: 32,
    fields: {
      created_ns: f(0, 8),
      last_ns: f(8, 8),
      packets: f(16, 8),
      revision: f(24, 4),
      verdict: f(28, 1),
      reason: f(29, 1),
      pad: f(30, 2),
    },
  },
  counter_value: { size: 16, fields: { packets: f(0, 8), bytes: f(8, 8) } },
  flow_event: {
    size: 72,
    fields: {
      ts_ns: f(0, 8),
      src_identity: f(8, 4),
      dst_identity: f(12, 4),
      ep_slot: f(16, 4),
      ep_identity: f(20, 4),
      sport: f(24, 2),
      dport: f(26, 2),
      family: f(28, 1),
      proto: f(29, 1),
      direction: f(30, 1),
      verdict: f(31, 1),
      reason: f(32, 1),
      saddr: f(40, 16),
      daddr: f(56, 16),
    },
  },
} as const satisfies Record<string, StructLayout>;

const S = STRUCTS;

// --- addresses ---------------------------------------------------------------

export const FAMILY_IPV4 = 4;
export const FAMILY_IPV6 = 6;

/** An IP address as 16 bytes (IPv4 in the first 4) and its family. */
export function encodeAddress(ip: string, out: Buffer, offset: number): 4 | 6 {
  const family = isIP(ip);
  if (family === 4) {
    const parts = ip.split('.');
    for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
    return 4;
  }
  if (family !== 6) throw new RangeError(`"${ip}" is not an IP address`);
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const expand = (gs: string[]): number[] =>
    gs.flatMap((g) => {
      if (g.includes('.')) {
        const b = g.split('.').map(Number);
        return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
      }
      return [parseInt(g, 16)];
    });
  const hv = expand(h);
  const tv = expand(t);
  const all = [...hv, ...new Array<number>(8 - hv.length - tv.length).fill(0), ...tv];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(all[i]!, offset + i * 2);
  return 6;
}

/** The canonical text of 16 address bytes (RFC 5952 for IPv6). */
export function decodeAddress(family: number, buf: Buffer, offset: number): string {
  if (family === FAMILY_IPV4) {
    return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + i * 2).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

// --- ipcache -----------------------------------------------------------------

export function encodeIpcacheKey(prefix: string): Buffer {
  const slash = prefix.indexOf('/');
  const b = Buffer.alloc(S.ipcache_key.size);
  const family = encodeAddress(prefix.slice(0, slash), b, S.ipcache_key.fields.addr.offset);
  b.writeUInt8(family, S.ipcache_key.fields.family.offset);
  b.writeUInt32LE(32 + Number(prefix.slice(slash + 1)), S.ipcache_key.fields.prefixlen.offset);
  return b;
}

export function decodeIpcacheKey(b: Buffer): string {
  const family = b.readUInt8(S.ipcache_key.fields.family.offset);
  const len = b.readUInt32LE(S.ipcache_key.fields.prefixlen.offset) - 32;
  return `${decodeAddress(family, b, S.ipcache_key.fields.addr.offset)}/${len}`;
}

export function encodeIpcacheValue(identity: number): Buffer {
  const b = Buffer.alloc(S.ipcache_value.size);
  b.writeUInt32LE(identity, S.ipcache_value.fields.identity.offset);
  return b;
}

export function decodeIpcacheValue(b: Buffer): number {
  return b.readUInt32LE(S.ipcache_value.fields.identity.offset);
}

// --- endpoints ---------------------------------------------------------------

export function encodeEpIpKey(ip: string): Buffer {
  const b = Buffer.alloc(S.ep_ip_key.size);
  const family = encodeAddress(ip, b, S.ep_ip_key.fields.addr.offset);
  b.writeUInt8(family, S.ep_ip_key.fields.family.offset);
  return b;
}

export function encodeEpIpValue(slot: number, ep: EndpointRecord): Buffer {
  const F = S.ep_ip_value.fields;
  const b = Buffer.alloc(S.ep_ip_value.size);
  b.writeUInt32LE(slot, F.slot.offset);
  b.writeUInt32LE(ep.identity, F.identity.offset);
  b.writeUInt8(ep.ingressEnforced ? 1 : 0, F.ingress_enforced.offset);
  b.writeUInt8(ep.egressEnforced ? 1 : 0, F.egress_enforced.offset);
  return b;
}

/** The endpoint record's text part, as JSON in ep_info.meta. */
function endpointMeta(ep: EndpointRecord): Buffer {
  return Buffer.from(
    JSON.stringify({
      c: ep.cluster,
      ns: ep.namespace,
      n: ep.name,
      ips: ep.ips,
      ports: ep.namedPorts.map((p) => [p.name, p.port, p.protocol]),
    }),
  );
}

/** The encoded size of an endpoint's meta, for the capacity check. */
export function endpointMetaSize(ep: EndpointRecord): number {
  return endpointMeta(ep).length;
}

export function encodeEpInfo(ep: EndpointRecord | undefined): Buffer {
  const F = S.ep_info.fields;
  const b = Buffer.alloc(S.ep_info.size);
  if (ep === undefined) return b; // used = 0: a free slot
  const meta = endpointMeta(ep);
  if (meta.length > EP_META_MAX) throw new RangeError(`endpoint meta is ${meta.length} bytes`);
  b.writeUInt32LE(1, F.used.offset);
  b.writeUInt32LE(ep.identity, F.identity.offset);
  b.writeUInt8(ep.ingressEnforced ? 1 : 0, F.ingress_enforced.offset);
  b.writeUInt8(ep.egressEnforced ? 1 : 0, F.egress_enforced.offset);
  b.writeUInt16LE(meta.length, F.meta_len.offset);
  meta.copy(b, F.meta.offset);
  return b;
}

/** undefined for a free slot; throws on a record that is not ours. */
export function decodeEpInfo(b: Buffer): EndpointRecord | undefined {
  const F = S.ep_info.fields;
  if (b.readUInt32LE(F.used.offset) === 0) return undefined;
  const len = b.readUInt16LE(F.meta_len.offset);
  const meta = JSON.parse(b.toString('utf8', F.meta.offset, F.meta.offset + len)) as {
    c: string;
    ns: string;
    n: string;
    ips: string[];
    ports: [string, number, string][];
  };
  return {
    cluster: meta.c,
    namespace: meta.ns,
    name: meta.n,
    identity: b.readUInt32LE(F.identity.offset),
    ips: meta.ips,
    namedPorts: meta.ports.map(([name, port, protocol]) => ({ name, port, protocol })),
    ingressEnforced: b.readUInt8(F.ingress_enforced.offset) === 1,
    egressEnforced: b.readUInt8(F.egress_enforced.offset) === 1,
  };
}

export function encodeSlot(slot: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(slot, 0);
  return b;
}

// --- policy ------------------------------------------------------------------

export function encodePolicyKey(k: PolicyKey): Buffer {
  const b = Buffer.alloc(S.policy_key.size);
  writePolicyKey(b, 0, k);
  return b;
}

/** Writes a policy key at `offset` of a zeroed buffer (packed batch keys). */
export function writePolicyKey(b: Buffer, offset: number, k: PolicyKey): void {
  const F = S.policy_key.fields;
  b.writeUInt32LE(k.identity, offset + F.identity.offset);
  b.writeUInt8(k.direction, offset + F.direction.offset);
  b.writeUInt8(k.protocol, offset + F.protocol.offset);
  b.writeUInt16LE(k.portLow, offset + F.port_low.offset);
  b.writeUInt16LE(k.portHigh, offset + F.port_high.offset);
}

/**
 * `writePolicyKey` by byte index, for keys checked already (`check.ts`:
 * direction, protocol and ports in range): the Buffer write methods' checks
 * were most of encoding a 100,000-entry revision. `b` must hold the key at
 * `offset`.
 */
export function writeCheckedPolicyKey(b: Buffer, offset: number, k: PolicyKey): void {
  const identity = k.identity;
  // check.ts leaves the identity to the wire type (uint32): out of range, the checked write throws.
  if (identity >>> 0 !== identity) {
    writePolicyKey(b, offset, k);
    return;
  }
  const F = S.policy_key.fields;
  const id = offset + F.identity.offset;
  b[id] = identity;
  b[id + 1] = identity >>> 8;
  b[id + 2] = identity >>> 16;
  b[id + 3] = identity >>> 24;
  b[offset + F.direction.offset] = k.direction;
  b[offset + F.protocol.offset] = k.protocol;
  const lo = offset + F.port_low.offset;
  b[lo] = k.portLow;
  b[lo + 1] = k.portLow >>> 8;
  const hi = offset + F.port_high.offset;
  b[hi] = k.portHigh;
  b[hi + 1] = k.portHigh >>> 8;
}

export function encodePolicyValue(verdict: Verdict): Buffer {
  const b = Buffer.alloc(S.policy_value.size);
  writePolicyValue(b, 0, verdict);
  return b;
}

export function writePolicyValue(b: Buffer, offset: number, verdict: Verdict): void {
  b.writeUInt8(verdict, offset + S.policy_value.fields.verdict.offset);
}

export function decodePolicy(key: Buffer, value: Buffer): PolicyRecord {
  return decodePolicyAt(key, 0, value, 0);
}

/** A policy entry from packed keys and values (batch lookups), at the given offsets. */
export function decodePolicyAt(
  keys: Buffer,
  keyOffset: number,
  values: Buffer,
  valueOffset: number,
): PolicyRecord {
  const F = S.policy_key.fields;
  return {
    direction: keys.readUInt8(keyOffset + F.direction.offset),
    identity: keys.readUInt32LE(keyOffset + F.identity.offset),
    protocol: keys.readUInt8(keyOffset + F.protocol.offset),
    portLow: keys.readUInt16LE(keyOffset + F.port_low.offset),
    portHigh: keys.readUInt16LE(keyOffset + F.port_high.offset),
    verdict: values.readUInt8(valueOffset + S.policy_value.fields.verdict.offset),
  };
}

// --- policy port ranges (LPM trie) ------------------------------------------

/** Bits of a range key before the port: slot, identity, direction, protocol. */
export const POLICY_RANGE_FIXED_BITS = 80;

/** One port prefix of one endpoint's range trie (see bpf/meshplane.h struct policy_range_key). */
export interface RangePrefixKey {
  slot: number;
  direction: number;
  identity: number;
  protocol: number;
  /** first port of the block */
  port: number;
  /** significant high bits of the port, 0..16 */
  prefixLen: number;
}

/** Writes a range key at `offset` of a zeroed buffer (packed batch keys). */
export function writeRangeKey(b: Buffer, offset: number, k: RangePrefixKey): void {
  const F = S.policy_range_key.fields;
  b.writeUInt32LE(POLICY_RANGE_FIXED_BITS + k.prefixLen, offset + F.prefixlen.offset);
  b.writeUInt32LE(k.slot, offset + F.slot.offset);
  b.writeUInt32LE(k.identity, offset + F.identity.offset);
  b.writeUInt8(k.direction, offset + F.direction.offset);
  b.writeUInt8(k.protocol, offset + F.protocol.offset);
  b.writeUInt16BE(k.port, offset + F.port.offset);
}

export function encodeRangeKey(k: RangePrefixKey): Buffer {
  const b = Buffer.alloc(S.policy_range_key.size);
  writeRangeKey(b, 0, k);
  return b;
}

export function decodeRangeKey(b: Buffer, offset = 0): RangePrefixKey {
  const F = S.policy_range_key.fields;
  return {
    slot: b.readUInt32LE(offset + F.slot.offset),
    direction: b.readUInt8(offset + F.direction.offset),
    identity: b.readUInt32LE(offset + F.identity.offset),
    protocol: b.readUInt8(offset + F.protocol.offset),
    port: b.readUInt16BE(offset + F.port.offset),
    prefixLen: b.readUInt32LE(offset + F.prefixlen.offset) - POLICY_RANGE_FIXED_BITS,
  };
}

export function decodeVerdict(b: Buffer, offset = 0): Verdict {
  return b.readUInt8(offset + S.policy_value.fields.verdict.offset);
}

// --- services ----------------------------------------------------------------

export function encodeServiceKey(name: string): Buffer {
  const b = Buffer.alloc(S.svc_key.size);
  const n = Buffer.from(name);
  if (n.length >= SVC_NAME_MAX) throw new RangeError(`service name is ${n.length} bytes`);
  n.copy(b, 0);
  return b;
}

function serviceJson(s: ServiceRecord): Buffer {
  return Buffer.from(
    JSON.stringify({
      namespace: s.namespace,
      name: s.name,
      type: s.type,
      ips: s.ips,
      ports: s.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
      backends: s.backends.map((be) => ({
        cluster: be.cluster,
        ip: be.ip,
        ports: be.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
      })),
    }),
  );
}

export function serviceValueSize(s: ServiceRecord): number {
  return serviceJson(s).length;
}

export function encodeServiceValue(s: ServiceRecord): Buffer {
  const json = serviceJson(s);
  if (json.length > SVC_DATA_MAX) throw new RangeError(`service record is ${json.length} bytes`);
  const b = Buffer.alloc(S.svc_value.size);
  b.writeUInt32LE(json.length, S.svc_value.fields.len.offset);
  json.copy(b, S.svc_value.fields.data.offset);
  return b;
}

export function decodeServiceValue(b: Buffer): ServiceRecord {
  const len = b.readUInt32LE(S.svc_value.fields.len.offset);
  const off = S.svc_value.fields.data.offset;
  return JSON.parse(b.toString('utf8', off, off + len)) as ServiceRecord;
}

// --- config ------------------------------------------------------------------

export interface Config {
  active: number;
  layoutVersion: number;
  eventsPerSec: number;
  eventsBurst: number;
}

export function encodeConfig(c: Config): Buffer {
  const F = S.config_value.fields;
  const b = Buffer.alloc(S.config_value.size);
  b.writeUInt32LE(c.active, F.active.offset);
  b.writeUInt32LE(c.layoutVersion, F.layout_version.offset);
  b.writeUInt32LE(c.eventsPerSec, F.events_per_sec.offset);
  b.writeUInt32LE(c.eventsBurst, F.events_burst.offset);
  return b;
}

export function decodeConfig(b: Buffer): Config {
  const F = S.config_value.fields;
  return {
    active: b.readUInt32LE(F.active.offset),
    layoutVersion: b.readUInt32LE(F.layout_version.offset),
    eventsPerSec: b.readUInt32LE(F.events_per_sec.offset),
    eventsBurst: b.readUInt32LE(F.events_burst.offset),
  };
}
