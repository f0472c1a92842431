import { Digest, PolicyEntryHasher } from '../../../common/index.js';
import { endpointName, serviceName } from '../entries.js';
import type { DatapathChange, EndpointRecord, ServiceRecord } from '../types.js';
import {
  STRUCTS,
  encodeEpInfo,
  encodeEpIpKey,
  encodeEpIpValue,
  encodeIpcacheKey,
  encodeIpcacheValue,
  encodeServiceKey,
  encodeServiceValue,
  encodeSlot,
  writeCheckedPolicyKey,
  writePolicyValue,
} from './layout.js';
import { Packed } from './packed.js';
import { planRanges, type RangeMirror, type RangePlan } from './ranges.js';
import { writeKeyIfEncodable } from './policy-key-id.js';
import { PolicyTable } from './policy-table.js';

/**
 * One endpoint's policy map as last read back: its entries by kernel key
 * bytes, the digest of those entries (a part of the datapath's digest), and
 * the hasher of its digest entries (their common prefix hashed once).
 */
export interface HeldPolicy {
  table: PolicyTable;
  digest: Digest;
  hasher: PolicyEntryHasher;
}

/** What the kernel holds, as last read back (the agent's mirror of the active copy). */
export interface Mirror {
  ipcache: Map<string, number>;
  endpoints: Map<string, { record: EndpointRecord; slot: number }>;
  /** endpoint -> its policy map */
  policies: Map<string, HeldPolicy>;
  services: Map<string, ServiceRecord>;
  /** endpoint -> its port ranges as the range trie holds them (ranges.ts) */
  ranges: RangeMirror;
}

export function emptyHeldPolicy(endpoint: string, expected = 0): HeldPolicy {
  return {
    table: new PolicyTable(STRUCTS.policy_key.size, expected),
    digest: new Digest(),
    hasher: new PolicyEntryHasher(endpoint),
  };
}

export function emptyMirror(): Mirror {
  return {
    ipcache: new Map(),
    endpoints: new Map(),
    policies: new Map(),
    services: new Map(),
    ranges: new Map(),
  };
}

/** Writes to one map, packed for batch calls: deletes first, then upserts. */
export interface TableOps {
  deletes: Packed;
  keys: Packed;
  values: Packed;
}

export type Table = 'ipcache' | 'epIps' | 'epInfo' | 'services' | 'ranges';
export const TABLES: readonly Table[] = ['ipcache', 'epIps', 'epInfo', 'services', 'ranges'];

const S = STRUCTS;
const SIZES: Record<Table | 'policy', [number, number]> = {
  ipcache: [S.ipcache_key.size, S.ipcache_value.size],
  epIps: [S.ep_ip_key.size, S.ep_ip_value.size],
  epInfo: [4, S.ep_info.size],
  services: [S.svc_key.size, S.svc_value.size],
  ranges: [S.policy_range_key.size, S.policy_value.size],
  policy: [S.policy_key.size, S.policy_value.size],
};

function ops(t: Table | 'policy', capacity = 4): TableOps {
  const [k, v] = SIZES[t];
  return {
    deletes: new Packed(k, capacity),
    keys: new Packed(k, capacity),
    values: new Packed(v, capacity),
  };
}

const tableOps = (): Record<Table, TableOps> => ({
  ipcache: ops('ipcache'),
  epIps: ops('epIps'),
  epInfo: ops('epInfo'),
  services: ops('services'),
  ranges: ops('ranges'),
});

/**
 * One endpoint's policy writes (deletes only of keys held) and their undo,
 * encoded on demand: `encode(n)` encodes the deletes and the first `n`
 * upserts (the commit writes a large map a batch at a time, encoding the
 * next batch while the kernel writes one); `forward` and `undo` encode all.
 */
export interface PolicyOps {
  endpoint: string;
  /** the change's upserts for this endpoint: `forward.keys.count` once encoded */
  readonly upserts: number;
  /** Encodes up to the first `n` upserts (and every delete); returns the forward writes so far. */
  encode(n: number): TableOps;
  readonly forward: TableOps;
  readonly undo: TableOps;
}

/**
 * A change as map writes, the same for both copies, and the writes that
 * undo it (the mirror's values of every touched key). Pure.
 */
export interface Plan {
  forward: Record<Table, TableOps>;
  undo: Record<Table, TableOps>;
  /** endpoints new in this change -> their slot */
  newSlots: Map<string, number>;
  /** endpoints deleted in this change -> their slot */
  deletedSlots: Map<string, number>;
  /** slot -> policy writes and their undo */
  policy: Map<number, PolicyOps>;
  /** the range trie's part (its writes are forward.ranges / undo.ranges) */
  ranges: RangePlan;
}

export function planChange(change: DatapathChange, mirror: Mirror, freeSlots: number[]): Plan {
  const forward = tableOps();
  const undo = tableOps();
  const put = (t: Table, key: Buffer, value: Buffer, before: Buffer | undefined): void => {
    forward[t].keys.push(key);
    forward[t].values.push(value);
    restore(t, key, before);
  };
  const del = (t: Table, key: Buffer, before: Buffer | undefined): void => {
    if (before === undefined) return; // not held: nothing to do
    forward[t].deletes.push(key);
    restore(t, key, before);
  };
  const restore = (t: Table, key: Buffer, before: Buffer | undefined): void => {
    if (before === undefined) undo[t].deletes.push(key);
    else {
      undo[t].keys.push(key);
      undo[t].values.push(before);
    }
  };

  for (const p of change.ipcache.deletes) {
    const id = mirror.ipcache.get(p);
    del('ipcache', encodeIpcacheKey(p), id === undefined ? undefined : encodeIpcacheValue(id));
  }
  for (const u of change.ipcache.upserts) {
    const id = mirror.ipcache.get(u.prefix);
    put(
      'ipcache',
      encodeIpcacheKey(u.prefix),
      encodeIpcacheValue(u.identity),
      id === undefined ? undefined : encodeIpcacheValue(id),
    );
  }

  // Endpoint addresses: who holds each IP now.
  const ipOwner = new Map<string, { record: EndpointRecord; slot: number }>();
  const newSlots = new Map<string, number>();
  const deletedSlots = new Map<string, number>();
  const touchedIps = new Map<string, { slot: number; record: EndpointRecord } | null>();
  for (const held of mirror.endpoints.values())
    for (const ip of held.record.ips) ipOwner.set(ip, held);
  for (const name of change.endpoints.deletes) {
    const held = mirror.endpoints.get(name);
    if (held === undefined) continue;
    deletedSlots.set(name, held.slot);
    for (const ip of held.record.ips) touchedIps.set(ip, null);
    put('epInfo', encodeSlot(held.slot), encodeEpInfo(undefined), encodeEpInfo(held.record));
  }
  const free = [...freeSlots];
  for (const u of change.endpoints.upserts) {
    const name = endpointName(u);
    const held = mirror.endpoints.get(name);
    let slot = held?.slot;
    if (slot === undefined) {
      slot = free.pop()!;
      newSlots.set(name, slot);
    }
    for (const ip of held?.record.ips ?? []) if (!touchedIps.has(ip)) touchedIps.set(ip, null);
    for (const ip of u.ips) touchedIps.set(ip, { slot, record: u });
    const before = held === undefined ? encodeEpInfo(undefined) : encodeEpInfo(held.record);
    put('epInfo', encodeSlot(slot), encodeEpInfo(u), before);
  }
  for (const [ip, now] of touchedIps) {
    const was = ipOwner.get(ip);
    const before = was === undefined ? undefined : encodeEpIpValue(was.slot, was.record);
    if (now === null) del('epIps', encodeEpIpKey(ip), before);
    else put('epIps', encodeEpIpKey(ip), encodeEpIpValue(now.slot, now.record), before);
  }

  const policy = new Map<number, PolicyOps>();
  for (const pm of change.policies) {
    const slot = mirror.endpoints.get(pm.endpoint)?.slot ?? newSlots.get(pm.endpoint)!;
    policy.set(slot, lazyPolicyOps(pm, mirror.policies.get(pm.endpoint)?.table));
  }

  const ranges = planRanges(
    change,
    mirror.ranges,
    (name) => mirror.endpoints.get(name)?.slot ?? newSlots.get(name)!,
    deletedSlots,
  );
  forward.ranges = ranges.forward;
  undo.ranges = ranges.undo;

  for (const n of change.services.deletes) {
    const held = mirror.services.get(n);
    del('services', encodeServiceKey(n), held === undefined ? undefined : encodeServiceValue(held));
  }
  for (const s of change.services.upserts) {
    const n = serviceName(s);
    const held = mirror.services.get(n);
    put(
      'services',
      encodeServiceKey(n),
      encodeServiceValue(s),
      held === undefined ? undefined : encodeServiceValue(held),
    );
  }
  return { forward, undo, newSlots, deletedSlots, policy, ranges };
}

/**
 * An endpoint's policy writes, encoded when first asked for: the commit
 * encodes each endpoint's a batch at a time, just before writing it, so
 * encoding overlaps the kernel writes of the batch (and the endpoints) before
 * (commit.ts). Every one is encoded before the mirror changes (`commitPlan`
 * reads them all before it returns). Keys and values go straight into packed
 * batch buffers. A new endpoint (nothing held) needs no undo: its new inner
 * maps are dropped whole on rollback.
 */
function lazyPolicyOps(
  pm: DatapathChange['policies'][number],
  held: PolicyTable | undefined,
): PolicyOps {
  const n = pm.upserts.length;
  let f: TableOps | undefined;
  let u: TableOps | undefined;
  let done = 0;
  const key = Buffer.alloc(S.policy_key.size);
  const start = (): [TableOps, TableOps] => {
    const fw = ops('policy', n);
    const un = ops('policy', held === undefined ? 1 : n + pm.deletes.length);
    for (const k of pm.deletes) {
      if (held === undefined || !writeKeyIfEncodable(key, k)) continue;
      const before = held.get(key, 0);
      if (before < 0) continue; // not held: nothing to do
      fw.deletes.push(key);
      un.keys.push(key);
      valueInto(un.values, before);
    }
    return [fw, un];
  };
  const encode = (upto: number): TableOps => {
    if (f === undefined || u === undefined) [f, u] = start();
    const end = Math.min(upto, n);
    for (; done < end; done++) {
      const e = pm.upserts[done]!;
      const off = f.keys.next(); // may grow the buffer: take it afterwards
      writeCheckedPolicyKey(f.keys.buffer, off, e);
      const v = f.values.next();
      writePolicyValue(f.values.buffer, v, e.verdict);
      if (held === undefined) continue;
      const before = held.get(f.keys.buffer, off);
      if (before < 0) u.deletes.push(f.keys.at(done));
      else {
        u.keys.push(f.keys.at(done));
        valueInto(u.values, before);
      }
    }
    return f;
  };
  return {
    endpoint: pm.endpoint,
    upserts: n,
    encode,
    get forward() {
      return encode(n);
    },
    get undo() {
      encode(n);
      return u!;
    },
  };
}

/** A held policy value (the kernel's 4 bytes, as PolicyTable keeps them). */
function valueInto(p: Packed, value: number): void {
  const off = p.next();
  p.buffer.writeUInt32LE(value, off);
}
