import type { Digest } from '../../../common/index.js';
import {
  endpointDigestEntry,
  endpointName,
  ipcacheDigestEntry,
  policyDigestEntry,
  policyKeyId,
  serviceDigestEntry,
  serviceName,
} from '../entries.js';
import type { DatapathChange, PolicyRecord } from '../types.js';
import type { KernelMap } from './kernel-map.js';
import {
  decodeEpInfo,
  decodeIpcacheValue,
  decodePolicyAt,
  decodeServiceValue,
  encodeIpcacheKey,
  encodeServiceKey,
  encodeSlot,
} from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import type { Mirror, Plan, PolicyOps } from './plan.js';

/** What the agent knows of the kernel: the mirror of the active copy, its digest, free slots. */
export interface HeldState {
  mirror: Mirror;
  digest: Digest;
  /** free endpoint slots (popped from the end) */
  free: number[];
}

/**
 * After a commit: updates the mirror and the digest from the changed entries
 * as `copy` (the active copy) now holds them — work proportional to the
 * change. An entry the kernel does not hold is dropped from the mirror, so
 * the digest tells.
 */
export function readBack(
  maps: DatapathMaps,
  change: DatapathChange,
  plan: Plan,
  copy: Copy,
  state: HeldState,
): void {
  const m = state.mirror;
  const d = state.digest;
  const k = maps.copies[copy];
  for (const p of change.ipcache.deletes) {
    const id = m.ipcache.get(p);
    if (id === undefined) continue;
    d.remove(ipcacheDigestEntry(p, id));
    m.ipcache.delete(p);
  }
  for (const u of change.ipcache.upserts) {
    const old = m.ipcache.get(u.prefix);
    if (old !== undefined) d.remove(ipcacheDigestEntry(u.prefix, old));
    const v = k.ipcache.lookup(encodeIpcacheKey(u.prefix));
    if (v === undefined) m.ipcache.delete(u.prefix);
    else {
      m.ipcache.set(u.prefix, decodeIpcacheValue(v));
      d.add(ipcacheDigestEntry(u.prefix, decodeIpcacheValue(v)));
    }
  }
  for (const [name, slot] of plan.deletedSlots) {
    const held = m.endpoints.get(name)!;
    d.remove(endpointDigestEntry(held.record));
    for (const e of m.policies.get(name)?.values() ?? []) d.remove(policyDigestEntry(name, e));
    m.policies.delete(name);
    m.endpoints.delete(name);
    maps.releaseInner(slot);
  }
  for (const u of change.endpoints.upserts) {
    const name = endpointName(u);
    const old = m.endpoints.get(name);
    if (old !== undefined) d.remove(endpointDigestEntry(old.record));
    const slot = old?.slot ?? plan.newSlots.get(name)!;
    const ep = decodeEpInfo(k.epInfo.lookup(encodeSlot(slot))!)!;
    m.endpoints.set(name, { record: ep, slot });
    if (!m.policies.has(name)) m.policies.set(name, new Map());
    d.add(endpointDigestEntry(ep));
  }
  for (const [slot, ops] of plan.policy) {
    readBackPolicy(maps.innerOf(copy, slot)!, ops, m.policies.get(ops.endpoint)!, d);
  }
  for (const n of change.services.deletes) {
    const old = m.services.get(n);
    if (old === undefined) continue;
    d.remove(serviceDigestEntry(old));
    m.services.delete(n);
  }
  for (const s of change.services.upserts) {
    const n = serviceName(s);
    const old = m.services.get(n);
    if (old !== undefined) d.remove(serviceDigestEntry(old));
    const v = k.services.lookup(encodeServiceKey(n));
    if (v === undefined) m.services.delete(n);
    else {
      const got = decodeServiceValue(v);
      m.services.set(n, got);
      d.add(serviceDigestEntry(got));
    }
  }
  const taken = new Set(plan.newSlots.values());
  state.free = state.free.filter((s) => !taken.has(s));
  for (const slot of plan.deletedSlots.values()) state.free.push(slot);
}

/**
 * One endpoint's changed policy entries as the kernel holds them. A change
 * of at least a quarter of the map reads the whole map in batches (a few
 * syscalls, still proportional to the change); a smaller one looks up each
 * changed key.
 */
function readBackPolicy(
  inner: KernelMap,
  ops: PolicyOps,
  held: Map<string, PolicyRecord>,
  d: Digest,
): void {
  const name = ops.endpoint;
  const forget = (id: string): void => {
    const old = held.get(id);
    if (old === undefined) return;
    d.remove(policyDigestEntry(name, old));
    held.delete(id);
  };
  for (const id of ops.deleteIds) forget(id);
  for (const id of ops.upsertIds) forget(id);
  const take = (id: string, e: PolicyRecord): void => {
    held.set(id, e);
    d.add(policyDigestEntry(name, e));
  };
  const keys = ops.forward.keys;
  const n = keys.count;
  if (n >= 256 && n * 4 >= held.size + n) {
    const wanted = new Set(ops.upsertIds);
    const got = inner.dumpPacked();
    const kb = got.keys.bytes();
    const vb = got.values.bytes();
    for (let i = 0; i < got.keys.count; i++) {
      const e = decodePolicyAt(kb, i * got.keys.size, vb, i * got.values.size);
      const id = policyKeyId(e);
      if (wanted.has(id)) take(id, e);
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = inner.lookup(keys.at(i));
    if (v !== undefined) take(ops.upsertIds[i]!, decodePolicyAt(keys.at(i), 0, v, 0));
  }
}
