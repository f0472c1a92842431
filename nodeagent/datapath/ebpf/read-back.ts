import { Digest, type PolicyEntryHasher } from '../../../common/index.js';
import {
  endpointDigestEntry,
  endpointName,
  ipcacheDigestEntry,
  serviceDigestEntry,
  serviceName,
} from '../entries.js';
import type { DatapathChange } from '../types.js';
import { ASYNC_TABLE_OPS, POLICY_BATCH } from './commit.js';
import type { PolicyMapDigester } from './kernel-digest.js';
import type { DumpedRecords, KernelMap } from './kernel-map.js';
import {
  STRUCTS,
  decodeEpInfo,
  decodeIpcacheValue,
  decodeServiceValue,
  encodeIpcacheKey,
  encodeServiceKey,
  encodeSlot,
} from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import { Packed } from './packed.js';
import {
  emptyHeldPolicy,
  type HeldPolicy,
  type Mirror,
  type Plan,
  type PolicyOps,
} from './plan.js';
import { PolicyTable } from './policy-table.js';

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
  /** slot -> its policy map as read back whole during the commit (`readWrittenPolicy`) */
  written: ReadonlyMap<number, WrittenPolicy> = new Map(),
  /** the ipcache upserts' values as read already (`readIpcacheAsync`), index by index; read here when absent */
  ipcacheValues?: readonly (Buffer | undefined)[],
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
  for (let i = 0; i < change.ipcache.upserts.length; i++) {
    const u = change.ipcache.upserts[i]!;
    const old = m.ipcache.get(u.prefix);
    if (old !== undefined) d.remove(ipcacheDigestEntry(u.prefix, old));
    const v =
      ipcacheValues !== undefined ? ipcacheValues[i] : k.ipcache.lookup(encodeIpcacheKey(u.prefix));
    if (v === undefined) m.ipcache.delete(u.prefix);
    else {
      m.ipcache.set(u.prefix, decodeIpcacheValue(v));
      d.add(ipcacheDigestEntry(u.prefix, decodeIpcacheValue(v)));
    }
  }
  for (const [name, slot] of plan.deletedSlots) {
    const held = m.endpoints.get(name)!;
    d.remove(endpointDigestEntry(held.record));
    const policy = m.policies.get(name);
    if (policy !== undefined) d.subtract(policy.digest);
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
    if (!m.policies.has(name)) m.policies.set(name, emptyHeldPolicy(name));
    d.add(endpointDigestEntry(ep));
  }
  for (const [slot, ops] of plan.policy) {
    const held = m.policies.get(ops.endpoint)!;
    const got = written.get(slot);
    if (got === undefined) {
      readBackPolicy(maps.innerOf(copy, slot)!, ops, held, d);
      continue;
    }
    d.subtract(held.digest);
    if (got.result === 'matched') {
      applyWritten(held, ops);
      held.digest = got.digest;
    } else {
      held.table = got.held.table;
      held.digest = got.held.digest;
    }
    d.merge(held.digest);
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
 * One endpoint's changed policy entries as the kernel holds them, key by
 * key, into its mirror and digest (and so the datapath's). A change the
 * commit read back whole (`readsWholeMap`, `readWrittenPolicy`) does not
 * come here.
 */
function readBackPolicy(inner: KernelMap, ops: PolicyOps, held: HeldPolicy, total: Digest): void {
  total.subtract(held.digest);
  const keys = ops.forward.keys;
  const size = keys.size;
  const { table, digest, hasher } = held;
  const forget = (buf: Buffer, off: number): void => {
    const old = table.delete(buf, off);
    if (old >= 0) digest.removeHashed(hashPolicy(hasher, buf, off, old));
  };
  const deletes = ops.forward.deletes;
  for (let i = 0; i < deletes.count; i++) forget(deletes.buffer, i * size);
  for (let i = 0; i < keys.count; i++) {
    forget(keys.buffer, i * size);
    const v = inner.lookup(keys.at(i));
    if (v === undefined) continue;
    const value = v.readUInt32LE(0);
    table.set(keys.buffer, i * size, value);
    digest.addHashed(hashPolicy(hasher, keys.buffer, i * size, value));
  }
  total.merge(held.digest);
}

/**
 * The values `copy`'s ipcache holds for a change's upserts, index by index
 * (undefined where it holds none), looked up on a koffi worker thread when
 * the change is large (ASYNC_TABLE_OPS upserts or more: a full sync's tens
 * of thousands of prefixes, one lookup each); undefined for a smaller one,
 * which `readBack` looks up on this thread, cheaper than a hop to a worker.
 */
export async function readIpcacheAsync(
  maps: DatapathMaps,
  change: DatapathChange,
  copy: Copy,
): Promise<(Buffer | undefined)[] | undefined> {
  const upserts = change.ipcache.upserts;
  if (upserts.length < ASYNC_TABLE_OPS) return undefined;
  const ipcache = maps.copies[copy].ipcache;
  const keys = new Packed(ipcache.keySize, upserts.length);
  for (const u of upserts) keys.push(encodeIpcacheKey(u.prefix));
  return ipcache.lookupManyAsync(keys);
}

/**
 * Whether an endpoint's policy change is read back by reading its whole map
 * (a change of at least a quarter of the map: a few batch calls, still
 * proportional to the change) rather than key by key.
 */
export function readsWholeMap(ops: PolicyOps, held: HeldPolicy | undefined): boolean {
  const n = ops.upserts;
  return n >= 256 && n * 4 >= (held?.table.size ?? 0) + n;
}

/** How a policy map written whole was read back during its commit (`readWrittenPolicy`). */
export type WrittenPolicy =
  /** the kernel's digest of the map is the digest of what was written: the held table takes the writes */
  | { result: 'matched'; digest: Digest }
  /** the kernel's digest differed, or the run was refused: the map dumped, its table and digest */
  | { result: 'mismatched' | 'refused'; held: HeldPolicy };

/**
 * Reads back an endpoint's policy map right after its whole-map-sized write
 * (`readsWholeMap`), on worker threads while other maps are written. First
 * the kernel hashes the map (`PolicyMapDigester`, no entry copied out) while
 * this thread hashes what the map should hold: `held` with `ops` applied.
 * When both agree the writes are what the kernel holds. When they differ,
 * or when the kernel refused the run, the map
 * is dumped (batch lookups, hashed a batch at a time while the next is read)
 * and the dump is what the mirror holds from then on.
 */
export async function readWrittenPolicy(
  written: { slot: number; copy: Copy; inner: KernelMap },
  ops: PolicyOps,
  held: HeldPolicy,
  digester: PolicyMapDigester,
): Promise<WrittenPolicy> {
  const { slot, copy, inner } = written;
  const kernel = digester.digest(slot, copy, held.hasher);
  kernel.catch(() => undefined); // awaited below, after the hashing
  const expected = digestAfter(held, ops);
  const got = await kernel.catch(() => undefined);
  if (got?.equals(expected) === true) return { result: 'matched', digest: expected };
  const result = got === undefined ? 'refused' : 'mismatched';
  return { result, held: await dumpPolicy(inner, held.hasher) };
}

/** The digest of `held` once `ops` are applied, `held` unchanged: work proportional to `ops`. */
function digestAfter(held: HeldPolicy, ops: PolicyOps): Digest {
  const { table, hasher } = held;
  const d = new Digest();
  d.merge(held.digest);
  const f = ops.forward;
  const ks = f.keys.size;
  const empty = table.size === 0;
  const db = f.deletes.buffer;
  for (let i = 0; i < f.deletes.count && !empty; i++) {
    const old = table.get(db, i * ks);
    if (old >= 0) d.removeHashed(hashPolicy(hasher, db, i * ks, old));
  }
  const kb = f.keys.buffer;
  const vb = f.values.buffer;
  const vs = f.values.size;
  for (let i = 0; i < f.keys.count; i++) {
    const old = empty ? -1 : table.get(kb, i * ks);
    if (old >= 0) d.removeHashed(hashPolicy(hasher, kb, i * ks, old));
    d.addHashed(hashPolicy(hasher, kb, i * ks, u32le(vb, i * vs)));
  }
  return d;
}

/**
 * `ops` applied to `held`'s table (the kernel holds them: `readWrittenPolicy`
 * verified it). An empty table becomes the written records themselves,
 * inserted after the ACK (`PolicyTable.deferred`).
 */
function applyWritten(held: HeldPolicy, ops: PolicyOps): void {
  const f = ops.forward;
  const ks = f.keys.size;
  if (held.table.size === 0) {
    held.table = PolicyTable.deferred(
      ks,
      f.keys.bytes(),
      f.values.bytes(),
      f.values.size,
      f.keys.count,
    );
    return;
  }
  const { table } = held;
  for (let i = 0; i < f.deletes.count; i++) table.delete(f.deletes.buffer, i * ks);
  const vb = f.values.buffer;
  for (let i = 0; i < f.keys.count; i++)
    table.set(f.keys.buffer, i * ks, vb.readUInt32LE(i * f.values.size));
}

/**
 * An endpoint's policy map dumped (every entry of the kernel map) into a
 * HeldPolicy: its digest, hashed from the dump's bytes a batch at a time
 * (while the next batch is read), and its table, built from the same bytes
 * on first use (`PolicyTable.deferred`; the datapath builds it after the ACK).
 */
async function dumpPolicy(inner: KernelMap, hasher: PolicyEntryHasher): Promise<HeldPolicy> {
  const digest = new Digest();
  const got = await inner.dumpAsync({
    batch: POLICY_BATCH,
    onBatch: (d: DumpedRecords, from: number, to: number) => {
      const kb = d.keys.buffer;
      const vb = d.values.buffer;
      const ks = d.keys.size;
      const vs = d.values.size;
      for (let i = from; i < to; i++)
        digest.addHashed(hashPolicy(hasher, kb, i * ks, u32le(vb, i * vs)));
    },
  });
  const table = PolicyTable.deferred(
    got.keys.size,
    got.keys.bytes(),
    got.values.bytes(),
    got.values.size,
    got.keys.count,
  );
  return { table, digest, hasher };
}

/** Replaces `held`'s table and digest with a full read of the endpoint's kernel policy map (batch lookups). */
export function readPolicyMap(inner: KernelMap, held: HeldPolicy): void {
  const got = inner.dumpPacked();
  const kb = got.keys.bytes();
  const vb = got.values.bytes();
  const ks = got.keys.size;
  const vs = got.values.size;
  const table = new PolicyTable(ks, got.keys.count);
  const digest = new Digest();
  for (let i = 0; i < got.keys.count; i++) {
    const value = vb.readUInt32LE(i * vs);
    table.set(kb, i * ks, value);
    digest.addHashed(hashPolicy(held.hasher, kb, i * ks, value));
  }
  held.table = table;
  held.digest = digest;
}

const K = STRUCTS.policy_key.fields;
const VERDICT_SHIFT = STRUCTS.policy_value.fields.verdict.offset * 8;

/** The digest entry of a kernel policy entry (key bytes at `off`, value as PolicyTable keeps it), hashed. */
export function hashPolicy(
  hasher: PolicyEntryHasher,
  keys: Buffer,
  off: number,
  value: number,
): PolicyEntryHasher {
  // Bytes by index (little-endian fields): the Buffer read methods' checks cost more than the hash.
  const lo = off + K.port_low.offset;
  const hi = off + K.port_high.offset;
  return hasher.hash(
    keys[off + K.direction.offset]!,
    u32le(keys, off + K.identity.offset),
    keys[off + K.protocol.offset]!,
    keys[lo]! | (keys[lo + 1]! << 8),
    keys[hi]! | (keys[hi + 1]! << 8),
    (value >>> VERDICT_SHIFT) & 0xff,
  );
}

/** A little-endian u32 by bytes: on a hot path, Buffer's read methods' checks cost more than the hash. */
function u32le(b: Buffer, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
