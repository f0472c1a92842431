import { DatapathError } from '../errors.js';
import type { KernelMap } from './kernel-map.js';
import { encodeSlot } from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import { TABLES, type Plan, type TableOps } from './plan.js';

/**
 * Carries out a plan as one revision switch: writes the standby copy, flips
 * the programs to it (returning once no packet can still be judged by the
 * other copy), then replays the same writes on the other copy. A failed
 * write undoes what was written (flipping back first when needed) and throws
 * a DatapathError; nothing is left half-applied. Returns the copy that is
 * active now (the one written first).
 */
export function commitPlan(maps: DatapathMaps, plan: Plan): Copy {
  const created = new Map<number, [KernelMap, KernelMap]>();
  try {
    for (const slot of plan.newSlots.values()) created.set(slot, maps.createInner(slot));
  } catch (err) {
    for (const pair of created.values()) for (const m of pair) m.close();
    throw err;
  }
  const active = maps.activeCopy();
  const standby = (1 - active) as Copy;
  try {
    writeCopy(maps, standby, plan, created, 'forward');
  } catch (err) {
    rollback(maps, [standby], plan, created, err);
  }
  maps.flip(standby);
  try {
    writeCopy(maps, active, plan, created, 'forward');
  } catch (err) {
    maps.flip(active);
    rollback(maps, [active, standby], plan, created, err);
  }
  for (const [slot, pair] of created) maps.adoptInner(slot, pair);
  return standby;
}

function rollback(
  maps: DatapathMaps,
  copies: Copy[],
  plan: Plan,
  created: Map<number, [KernelMap, KernelMap]>,
  cause: unknown,
): never {
  try {
    for (const c of copies) writeCopy(maps, c, plan, created, 'undo');
  } finally {
    for (const pair of created.values()) for (const m of pair) m.close();
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
  created: Map<number, [KernelMap, KernelMap]>,
  dir: 'forward' | 'undo',
): void {
  const m = maps.copies[copy];
  const apply = (map: KernelMap, o: TableOps): void => {
    map.deleteMany(o.deletes);
    map.updateMany(o.keys, o.values);
  };
  for (const t of TABLES) apply(m[t], plan[dir][t]);
  for (const [slot, pair] of created) {
    if (dir === 'forward') maps.setOuter(copy, slot, pair[copy]);
    else m.policyOuter.delete(encodeSlot(slot));
  }
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
