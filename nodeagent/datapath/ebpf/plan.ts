import { endpointName, policyKeyId, serviceName } from '../entries.js';
import type { DatapathChange, EndpointRecord, PolicyRecord, ServiceRecord } from '../types.js';
import {
  encodeEpInfo,
  encodeEpIpKey,
  encodeEpIpValue,
  encodeIpcacheKey,
  encodeIpcacheValue,
  encodePolicyKey,
  encodePolicyValue,
  encodeServiceKey,
  encodeServiceValue,
  encodeSlot,
} from './layout.js';

/** What the kernel holds, as last read back (the agent's mirror of the active copy). */
export interface Mirror {
  ipcache: Map<string, number>;
  endpoints: Map<string, { record: EndpointRecord; slot: number }>;
  /** endpoint -> policyKeyId -> entry */
  policies: Map<string, Map<string, PolicyRecord>>;
  services: Map<string, ServiceRecord>;
}

export function emptyMirror(): Mirror {
  return { ipcache: new Map(), endpoints: new Map(), policies: new Map(), services: new Map() };
}

/** Writes to one map: deletes first, then upserts. */
export interface TableOps {
  deletes: Buffer[];
  keys: Buffer[];
  values: Buffer[];
}

export type Table = 'ipcache' | 'epIps' | 'epInfo' | 'services';
export const TABLES: readonly Table[] = ['ipcache', 'epIps', 'epInfo', 'services'];

const ops = (): TableOps => ({ deletes: [], keys: [], values: [] });

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
  policy: Map<number, { forward: TableOps; undo: TableOps }>;
}

export function planChange(change: DatapathChange, mirror: Mirror, freeSlots: number[]): Plan {
  const forward = { ipcache: ops(), epIps: ops(), epInfo: ops(), services: ops() };
  const undo = { ipcache: ops(), epIps: ops(), epInfo: ops(), services: ops() };
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

  const policy = new Map<number, { forward: TableOps; undo: TableOps }>();
  for (const pm of change.policies) {
    const slot = mirror.endpoints.get(pm.endpoint)?.slot ?? newSlots.get(pm.endpoint)!;
    const held = mirror.policies.get(pm.endpoint);
    const f = ops();
    const u = ops();
    const back = (key: Buffer, before: PolicyRecord | undefined): void => {
      if (before === undefined) u.deletes.push(key);
      else {
        u.keys.push(key);
        u.values.push(encodePolicyValue(before.verdict));
      }
    };
    for (const k of pm.deletes) {
      const before = held?.get(policyKeyId(k));
      if (before === undefined) continue;
      const key = encodePolicyKey(k);
      f.deletes.push(key);
      back(key, before);
    }
    for (const e of pm.upserts) {
      const key = encodePolicyKey(e);
      f.keys.push(key);
      f.values.push(encodePolicyValue(e.verdict));
      back(key, held?.get(policyKeyId(e)));
    }
    policy.set(slot, { forward: f, undo: u });
  }

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
  return { forward, undo, newSlots, deletedSlots, policy };
}
