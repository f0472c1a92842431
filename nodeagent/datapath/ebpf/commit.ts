import { DatapathError } from '../errors.js';
import type { KernelMap } from './kernel-map.js';
import { encodeSlot } from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import { TABLES, type Plan, type PolicyOps, type TableOps } from './plan.js';

/** A committed plan: the copy the programs read now, and the writes still owed to the other one. */
export interface Committed {
  active: Copy;
  /**
   * Resolves after an RCU grace period that began with the switch: no
   * program is judging a packet with the other copy any more. Rejects with a
   * BpfError if the kernel refused the wait (then `maps.graceSync()` first).
   */
  grace: Promise<void>;
  /**
   * Replays the plan on the other copy. Must run after `grace` resolved (or
   * after `maps.graceSync()`) and before the next plan is written; throws a
   * BpfError when a kernel write fails (the copy is then partly written and
   * must be copied from the active one).
   */
  replay: () => void;
  /**
   * The same replay with its large writes on worker threads (the policy
   * maps' batches, and tables of ASYNC_TABLE_OPS entries or more: a full
   * sync's ipcache is an LPM trie, one call per prefix), so the event loop
   * stays free while it runs. The same rules as `replay`; call one of the two,
   * once. Settles only after every write it started.
   */
  replayAsync: () => Promise<void>;
}

/**
 * Entries per batch write and per batch lookup of a policy map: a large
 * map's next batch is encoded, and its last one hashed, on the event loop
 * thread while a worker thread writes or reads one.
 */
export const POLICY_BATCH = 16_384;

/** Batch writes of one policy map in flight at once (see `writePolicy`). */
export const POLICY_WRITERS = 2;

export interface CommitOptions {
  /**
   * Runs as soon as a slot's policy map is written (and, for a new slot, the
   * copy's outer map holds it), with the map and the copy written; a
   * promise it returns (a read of the map on a worker thread, say) runs while
   * other maps are written, and the switch waits for it. The maps written
   * are the ones the programs read after the switch, and nothing else writes
   * them, so what is read there is what the active copy holds.
   */
  afterWrite?: (
    slot: number,
    ops: PolicyOps,
    inner: KernelMap,
    copy: Copy,
  ) => Promise<void> | undefined;
  /**
   * The standby copy's inner maps being created already
   * (`DatapathMaps.createInnerOneAsync`) for the slots new endpoints will
   * get; the ones the plan uses are taken out of this map (the caller closes
   * the rest).
   */
  created?: Map<number, Promise<KernelMap>>;
  /** the copy `created` was made for: used only if it is the standby copy */
  createdCopy?: Copy;
  /** policy maps written (and read back) at once; default 2 */
  parallel?: number;
}

/**
 * Carries out a plan as one revision switch: writes the standby copy, then
 * switches the programs to it: every packet judged after the returned
 * promise resolves is judged by the new revision (`grace` says when the
 * packets judged before have finished). A failed write undoes what was written and throws a
 * DatapathError; nothing is left half-applied. The other copy is brought up
 * to date by `replay()`, which the caller runs after acknowledging the
 * revision: the active copy holds all of it already.
 *
 * The policy maps' batch writes (and the reads of `afterWrite`) and the
 * outer map's write run on worker threads, `parallel` maps at a time, so the
 * event loop thread encodes and hashes meanwhile (both cores work); so do
 * the other tables' writes of ASYNC_TABLE_OPS entries or more (a full sync's
 * ipcache: an LPM trie, one call per prefix, by bpf/map-ops.c). The rest is
 * written on the calling thread. Resolves after the switch and after every
 * `afterWrite` promise.
 */
export async function commitPlan(
  maps: DatapathMaps,
  plan: Plan,
  opts: CommitOptions = {},
): Promise<Committed> {
  const previous = maps.activeCopy();
  const standby = (1 - previous) as Copy;
  // New slots' inner maps: the standby copy's now; the other copy's with the replay, after the ACK.
  const created = new Map<number, Pair>();
  try {
    for (const slot of plan.newSlots.values()) {
      const early = opts.createdCopy === standby ? opts.created?.get(slot) : undefined;
      if (early !== undefined) opts.created?.delete(slot);
      const pair: Pair = [undefined, undefined];
      pair[standby] = early !== undefined ? await early : maps.createInnerOne(slot, standby);
      created.set(slot, pair);
    }
  } catch (err) {
    closeAll(created);
    throw err;
  }
  const pending: Promise<unknown>[] = [];
  const reads: Promise<unknown>[] = [];
  try {
    const m = maps.copies[standby];
    // Large table writes (a full sync's ipcache: an LPM trie, one call per prefix) on worker threads.
    for (const t of TABLES) applyOpsSized(m[t], plan.forward[t], pending);
    const outer = maps.setOuterManyAsync(
      standby,
      [...created].map(([s, pair]) => [s, pair[standby]!]),
    );
    pending.push(outer);
    const jobs = [...plan.policy];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const [slot, ops] = jobs[next++]!;
        const inner = created.get(slot)?.[standby] ?? maps.innerOf(standby, slot);
        if (inner === undefined) continue;
        await writePolicy(inner, ops);
        if (opts.afterWrite === undefined) continue;
        // A new slot's map is the copy's (its outer entry written) before it is read as the copy's.
        if (created.has(slot)) await outer;
        const read = opts.afterWrite(slot, ops, inner, standby);
        if (read !== undefined) {
          reads.push(read);
          await read;
        }
      }
    };
    for (let w = 0; w < Math.max(1, opts.parallel ?? 2); w++) pending.push(worker());
    const settled = await Promise.allSettled(pending);
    // Every endpoint's writes encoded (plan.ts encodes them on first use) before the mirror changes.
    for (const ops of plan.policy.values()) void ops.forward;
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    for (const slot of plan.deletedSlots.values()) m.policyOuter.delete(encodeSlot(slot));
  } catch (err) {
    await Promise.allSettled([...pending, ...reads]);
    rollback(maps, [standby], plan, created, err);
  }
  maps.switchTo(standby);
  const grace = maps.graceAsync();
  grace.catch(() => undefined); // the caller's to await
  for (const [slot, pair] of created) maps.adoptInner(slot, pair);
  return {
    active: standby,
    grace,
    replay: () => {
      const made = createOthers(maps, previous, created);
      try {
        writeCopy(maps, previous, plan, created, 'forward');
      } catch (err) {
        // Not the slots' maps: whatever an outer map holds is opened from it again (innerOf).
        for (const m of made) m.close();
        throw err;
      }
      for (const [slot, pair] of created) maps.adoptInner(slot, [pair[0], pair[1]]);
    },
    replayAsync: async () => {
      const made = createOthers(maps, previous, created);
      try {
        await replayCopyAsync(maps, previous, plan, created);
      } catch (err) {
        for (const m of made) m.close();
        throw err;
      }
      for (const [slot, pair] of created) maps.adoptInner(slot, [pair[0], pair[1]]);
    },
  };
}

/** The other copy's inner maps for the plan's new slots (the ones it does not have yet). */
function createOthers(maps: DatapathMaps, copy: Copy, created: Map<number, Pair>): KernelMap[] {
  const made: KernelMap[] = [];
  try {
    for (const [slot, pair] of created) {
      if (pair[copy] !== undefined) continue;
      pair[copy] = maps.createInnerOne(slot, copy);
      made.push(pair[copy]);
    }
  } catch (err) {
    for (const m of made) m.close();
    throw err;
  }
  return made;
}

/**
 * `writeCopy(..., 'forward')` with its large writes on worker threads: every
 * policy map's and every table's of ASYNC_TABLE_OPS entries or more. Nothing
 * reads this copy meanwhile (the programs judge with the other one), so the
 * writes may land in any order; deleted slots leave the outer map last, as
 * in `writeCopy`. Settles after every write it started; throws the first
 * failure.
 */
async function replayCopyAsync(
  maps: DatapathMaps,
  copy: Copy,
  plan: Plan,
  created: Map<number, Pair>,
): Promise<void> {
  const m = maps.copies[copy];
  const pending: Promise<unknown>[] = [];
  let failure: { reason: unknown } | undefined;
  try {
    for (const t of TABLES) applyOpsSized(m[t], plan.forward[t], pending);
    pending.push(
      maps.setOuterManyAsync(
        copy,
        [...created].map(([s, pair]) => [s, pair[copy]!]),
      ),
    );
    for (const [slot, ops] of plan.policy) {
      const inner = created.get(slot)?.[copy] ?? maps.innerOf(copy, slot);
      if (inner !== undefined) applyOpsSized(inner, ops.forward, pending);
    }
  } catch (err) {
    failure = { reason: err };
  }
  // Every write started has settled before this returns or throws.
  const settled = await Promise.allSettled(pending);
  failure ??= settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  for (const slot of plan.deletedSlots.values()) m.policyOuter.delete(encodeSlot(slot));
}

/**
 * One endpoint's policy writes into its standby inner map: the deletes, then
 * the upserts `POLICY_BATCH` at a time on worker threads, `POLICY_WRITERS`
 * batches in flight and the next one encoded meanwhile. The upserts of one
 * revision are distinct keys (checked), so the batches may land in any order;
 * two threads writing one hash map take about half the time of one (each
 * CPU takes preallocated elements from its own free list). Settles only
 * after every write it started.
 */
async function writePolicy(inner: KernelMap, ops: PolicyOps): Promise<void> {
  const n = ops.upserts;
  inner.deleteMany(ops.encode(Math.min(n, POLICY_BATCH)).deletes);
  const writing: Promise<void>[] = [];
  try {
    for (let from = 0; from < n; from += POLICY_BATCH) {
      const to = Math.min(n, from + POLICY_BATCH);
      const f = ops.encode(to);
      if (writing.length >= POLICY_WRITERS) await writing.shift();
      const write = inner.updateManyAsync(f.keys.range(from, to), f.values.range(from, to));
      write.catch(() => undefined); // awaited below, in order
      writing.push(write);
    }
    for (const write of writing) await write;
  } catch (err) {
    await Promise.allSettled(writing);
    throw err;
  }
}

function rollback(
  maps: DatapathMaps,
  copies: Copy[],
  plan: Plan,
  created: Map<number, Pair>,
  cause: unknown,
): never {
  try {
    for (const c of copies) writeCopy(maps, c, plan, created, 'undo');
  } finally {
    closeAll(created);
  }
  throw new DatapathError(
    [
      {
        code: 'INTERNAL',
        message: `kernel map write failed, change rolled back: ${(cause as Error).message}`,
        resourceNames: [],
      },
    ],
    { cause },
  );
}

/** One copy's writes of a plan (or of its undo): one batch call per map where the map type allows. */
function writeCopy(
  maps: DatapathMaps,
  copy: Copy,
  plan: Plan,
  created: Map<number, Pair>,
  dir: 'forward' | 'undo',
): void {
  const m = maps.copies[copy];
  const apply = applyOps;
  for (const t of TABLES) apply(m[t], plan[dir][t]);
  if (dir === 'forward')
    maps.setOuterMany(
      copy,
      [...created].map(([s, pair]) => [s, pair[copy]!]),
    );
  else for (const slot of created.keys()) m.policyOuter.delete(encodeSlot(slot));
  for (const [slot, ops] of plan.policy) {
    const inner = created.get(slot)?.[copy] ?? maps.innerOf(copy, slot);
    if (inner !== undefined) apply(inner, ops[dir]);
  }
  // Deleted endpoints lose their policy maps; the undo puts the held ones back.
  for (const slot of plan.deletedSlots.values()) {
    if (dir === 'forward') m.policyOuter.delete(encodeSlot(slot));
    else {
      const inner = maps.innerOf(copy, slot);
      if (inner !== undefined) maps.setOuter(copy, slot, inner);
    }
  }
}

/** A new slot's inner maps by copy (the other copy's is made by the replay). */
type Pair = [KernelMap | undefined, KernelMap | undefined];

function closeAll(created: Map<number, Pair>): void {
  for (const pair of created.values()) for (const m of pair) m?.close();
}

/**
 * Entries of one table's change from which the commit writes them on a
 * worker thread (`applyOpsAsync`); fewer are written on the calling thread,
 * cheaper than a hop to a worker for the few entries of a typical revision.
 */
export const ASYNC_TABLE_OPS = 256;

/** Writes `o` on this thread, or, from ASYNC_TABLE_OPS entries on, on a worker thread (added to `pending`). */
function applyOpsSized(map: KernelMap, o: TableOps, pending: Promise<unknown>[]): void {
  if (o.deletes.count + o.keys.count < ASYNC_TABLE_OPS) applyOps(map, o);
  else pending.push(applyOpsAsync(map, o));
}

async function applyOpsAsync(map: KernelMap, o: TableOps): Promise<void> {
  await map.deleteManyAsync(o.deletes);
  await map.updateManyAsync(o.keys, o.values);
}

function applyOps(map: KernelMap, o: TableOps): void {
  map.deleteMany(o.deletes);
  map.updateMany(o.keys, o.values);
}
