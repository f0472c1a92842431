import { mergeVerdicts, portRangeToPrefixes } from '../../../common/index.js';
import type { Verdict } from '../../../proto/index.js';
import { policyKeyId } from '../entries.js';
import type { Rejection } from '../errors.js';
import type { DatapathChange, PolicyKey, PolicyRecord } from '../types.js';
import {
  STRUCTS,
  decodeRangeKey,
  decodeVerdict,
  writePolicyValue,
  writeRangeKey,
  type RangePrefixKey,
} from './layout.js';
import { Packed } from './packed.js';

/**
 * The port-range trie (policy_ranges_0/1), derived from the policy maps'
 * range entries. The policy maps keep the logical entries (what read-back,
 * the digest and the control plane see); the trie is what the program looks
 * port ranges up in. Per (endpoint, direction, protocol, identity) — a
 * "group" — the ranges are cut into disjoint intervals whose verdict is the
 * merge (deny > audit > allow) of every range covering them, and each
 * interval is stored as aligned port prefixes. With lookupPolicy's rules
 * (a deny anywhere wins, an audit below any-any next, otherwise any match at
 * a level) the merged verdict of the ranges holding a port is all a level
 * needs, so one LPM lookup per level gives lookupPolicy's verdict. Pure.
 */

/** A range entry: two different ports, low < high ("single port" and "any port" are not). */
export function isRange(k: PolicyKey): boolean {
  return k.portHigh > k.portLow;
}

function hasRange(keys: readonly PolicyKey[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k.portHigh > k.portLow) return true;
  }
  return false;
}

/** The group of a range key: direction, protocol, identity. */
export function rangeGroupId(k: { direction: number; protocol: number; identity: number }): string {
  return `${k.direction}|${k.protocol}|${k.identity}`;
}

/** A prefix as one number: port * 32 + prefixLen. */
export type PrefixId = number;
const prefixId = (port: number, prefixLen: number): PrefixId => port * 32 + prefixLen;
const portOf = (id: PrefixId): number => Math.floor(id / 32);
const lenOf = (id: PrefixId): number => id % 32;

/** One group's range entries and the prefixes the trie holds for it. */
export interface RangeGroup {
  direction: number;
  protocol: number;
  identity: number;
  /** policyKeyId -> range entry */
  entries: Map<string, PolicyRecord>;
  /** prefix -> verdict, as written to (or, on adoption, read from) the trie */
  prefixes: Map<PrefixId, Verdict>;
}

/** endpoint (cluster/namespace/name) -> group id -> group */
export type RangeMirror = Map<string, Map<string, RangeGroup>>;

/**
 * The trie's prefixes for one group's range entries: disjoint aligned port
 * blocks, each with the merged verdict of the ranges covering it. Adjacent
 * intervals of the same verdict are joined first (fewer prefixes).
 */
export function deriveRangePrefixes(
  ranges: Iterable<{ portLow: number; portHigh: number; verdict: Verdict }>,
): Map<PrefixId, Verdict> {
  // Sweep over range starts and ends, counting the covering ranges per verdict.
  const events: [number, Verdict, number][] = [];
  for (const r of ranges) {
    events.push([r.portLow, r.verdict, 1], [r.portHigh + 1, r.verdict, -1]);
  }
  events.sort((a, b) => a[0] - b[0]);
  const covering = new Map<Verdict, number>();
  const intervals: { low: number; high: number; verdict: Verdict }[] = [];
  let i = 0;
  while (i < events.length) {
    const at = events[i]![0];
    for (; i < events.length && events[i]![0] === at; i++) {
      const [, v, d] = events[i]!;
      covering.set(v, (covering.get(v) ?? 0) + d);
    }
    if (i === events.length) break;
    const next = events[i]![0];
    let verdict: Verdict | undefined;
    for (const [v, n] of covering) {
      if (n > 0) verdict = verdict === undefined ? v : mergeVerdicts(verdict, v);
    }
    if (verdict === undefined) continue;
    const last = intervals[intervals.length - 1];
    if (last !== undefined && last.high === at - 1 && last.verdict === verdict)
      last.high = next - 1;
    else intervals.push({ low: at, high: next - 1, verdict });
  }
  const out = new Map<PrefixId, Verdict>();
  for (const iv of intervals) {
    // portRangeToPrefixes reads 0..0 as "any port"; here it is port 0 alone.
    const blocks =
      iv.high === 0 ? [{ port: 0, prefixLen: 16 }] : portRangeToPrefixes(iv.low, iv.high);
    for (const p of blocks) {
      out.set(prefixId(p.port, p.prefixLen), iv.verdict);
    }
  }
  return out;
}

/** Each group's expected trie prefixes for one endpoint's entries. */
export function expectedRanges(
  entries: Iterable<PolicyRecord>,
): Map<string, Map<PrefixId, Verdict>> {
  const groups = new Map<string, PolicyRecord[]>();
  for (const e of entries) {
    if (!isRange(e)) continue;
    const id = rangeGroupId(e);
    let g = groups.get(id);
    if (g === undefined) groups.set(id, (g = []));
    g.push(e);
  }
  const out = new Map<string, Map<PrefixId, Verdict>>();
  for (const [id, g] of groups) out.set(id, deriveRangePrefixes(g));
  return out;
}

/** The prefixes one endpoint's trie entries need. */
export function prefixCount(groups: Map<string, RangeGroup> | undefined): number {
  let n = 0;
  for (const g of groups?.values() ?? []) n += g.prefixes.size;
  return n;
}

// --- planning ----------------------------------------------------------------

export interface RangeOps {
  deletes: Packed;
  keys: Packed;
  values: Packed;
}

export interface RangePlan {
  forward: RangeOps;
  undo: RangeOps;
  /** endpoint -> group id -> the group after the change (undefined: no ranges left in it) */
  next: Map<string, Map<string, RangeGroup | undefined>>;
  /** endpoints deleted by the change: their ranges go with them */
  dropped: string[];
  /** endpoints whose ranges change -> the prefixes they need afterwards, and the resource at fault */
  prefixes: Map<string, { count: number; resource: string }>;
}

const K = STRUCTS.policy_range_key.size;
const V = STRUCTS.policy_value.size;
const rangeOps = (): RangeOps => ({
  deletes: new Packed(K),
  keys: new Packed(K),
  values: new Packed(V),
});

/**
 * The trie writes of a change (the same for both copies) and their undo:
 * only the groups whose range entries change are derived again, and only
 * prefixes whose verdict changes are written. `slotOf` gives the slot of
 * an endpoint that exists after the change; `deleted` the deleted
 * endpoints. Capacity: rangeCapacityProblems.
 */
export function planRanges(
  change: DatapathChange,
  mirror: RangeMirror,
  slotOf: (endpoint: string) => number,
  deleted: Map<string, number>,
): RangePlan {
  const plan: RangePlan = {
    forward: rangeOps(),
    undo: rangeOps(),
    next: new Map(),
    dropped: [],
    prefixes: new Map(),
  };
  const key = (slot: number, g: RangeGroup, id: PrefixId): RangePrefixKey => ({
    slot,
    direction: g.direction,
    identity: g.identity,
    protocol: g.protocol,
    port: portOf(id),
    prefixLen: lenOf(id),
  });
  const restore = (k: RangePrefixKey, before: Verdict | undefined): void => {
    if (before === undefined) keyInto(plan.undo.deletes, k);
    else {
      keyInto(plan.undo.keys, k);
      valueInto(plan.undo.values, before);
    }
  };

  for (const [endpoint, slot] of deleted) {
    const groups = mirror.get(endpoint);
    if (groups === undefined) continue;
    plan.dropped.push(endpoint);
    for (const g of groups.values()) {
      for (const [id, v] of g.prefixes) {
        const k = key(slot, g, id);
        keyInto(plan.forward.deletes, k);
        restore(k, v);
      }
    }
  }

  for (const pm of change.policies) {
    // Most changes hold no range at all: a plain loop says so (no closure or Map per entry).
    if (!hasRange(pm.upserts) && !hasRange(pm.deletes)) continue;
    // The range entries this change touches, by group: id -> new entry (null: deleted).
    const touched = new Map<
      string,
      { key: PolicyKey; changes: Map<string, PolicyRecord | null> }
    >();
    const touch = (k: PolicyKey, e: PolicyRecord | null): void => {
      if (!isRange(k)) return;
      const gid = rangeGroupId(k);
      let t = touched.get(gid);
      if (t === undefined) touched.set(gid, (t = { key: k, changes: new Map() }));
      t.changes.set(policyKeyId(k), e);
    };
    for (const k of pm.deletes) touch(k, null);
    for (const e of pm.upserts) touch(e, e);
    if (touched.size === 0) continue;

    const held = mirror.get(pm.endpoint);
    const slot = slotOf(pm.endpoint);
    const next = new Map<string, RangeGroup | undefined>();
    let count = prefixCount(held);
    for (const [gid, t] of touched) {
      const old = held?.get(gid);
      const entries = new Map(old?.entries);
      for (const [id, e] of t.changes) {
        if (e === null) entries.delete(id);
        else entries.set(id, { ...e });
      }
      if (old === undefined && entries.size === 0) continue; // deletes of entries not held
      const g: RangeGroup = {
        direction: t.key.direction,
        protocol: t.key.protocol,
        identity: t.key.identity,
        entries,
        prefixes: deriveRangePrefixes(entries.values()),
      };
      const before = old?.prefixes ?? new Map<PrefixId, Verdict>();
      for (const [id, v] of before) {
        if (g.prefixes.has(id)) continue;
        const k = key(slot, g, id);
        keyInto(plan.forward.deletes, k);
        restore(k, v);
      }
      for (const [id, v] of g.prefixes) {
        const was = before.get(id);
        if (was === v) continue;
        const k = key(slot, g, id);
        keyInto(plan.forward.keys, k);
        valueInto(plan.forward.values, v);
        restore(k, was);
      }
      count += g.prefixes.size - before.size;
      next.set(gid, entries.size === 0 && g.prefixes.size === 0 ? undefined : g);
    }
    plan.next.set(pm.endpoint, next);
    plan.prefixes.set(pm.endpoint, { count, resource: pm.resource });
  }
  return plan;
}

/** Endpoints whose ranges would need more than `perEndpoint` prefixes (the trie's share of one endpoint). */
export function rangeCapacityProblems(plan: RangePlan, perEndpoint: number): Rejection[] {
  const out: Rejection[] = [];
  for (const [endpoint, { count, resource }] of plan.prefixes) {
    if (count <= perEndpoint) continue;
    out.push({
      code: 'CAPACITY',
      message: `port ranges of ${endpoint} would need ${count} port prefixes in the kernel, capacity is ${perEndpoint}`,
      resourceNames: [resource],
    });
  }
  return out;
}

/** Takes a committed plan into the mirror. */
export function commitRanges(mirror: RangeMirror, plan: RangePlan): void {
  for (const endpoint of plan.dropped) mirror.delete(endpoint);
  for (const [endpoint, groups] of plan.next) {
    let held = mirror.get(endpoint);
    if (held === undefined) mirror.set(endpoint, (held = new Map<string, RangeGroup>()));
    for (const [gid, g] of groups) {
      if (g === undefined) held.delete(gid);
      else held.set(gid, g);
    }
    if (held.size === 0) mirror.delete(endpoint);
  }
}

function keyInto(p: Packed, k: RangePrefixKey): void {
  const off = p.next(); // may grow the buffer: take it afterwards
  writeRangeKey(p.buffer, off, k);
}

function valueInto(p: Packed, v: Verdict): void {
  const off = p.next();
  writePolicyValue(p.buffer, off, v);
}

// --- reading -----------------------------------------------------------------

/** A trie's contents: slot -> group id -> prefix -> verdict. */
export type TrieContents = Map<number, Map<string, Map<PrefixId, Verdict>>>;

export function decodeTrie(dump: { keys: Packed; values: Packed }): TrieContents {
  const out: TrieContents = new Map();
  for (let i = 0; i < dump.keys.count; i++) {
    const k = decodeRangeKey(dump.keys.at(i));
    let bySlot = out.get(k.slot);
    if (bySlot === undefined) out.set(k.slot, (bySlot = new Map<string, Map<PrefixId, Verdict>>()));
    const gid = rangeGroupId(k);
    let g = bySlot.get(gid);
    if (g === undefined) bySlot.set(gid, (g = new Map<PrefixId, Verdict>()));
    g.set(prefixId(k.port, k.prefixLen), decodeVerdict(dump.values.at(i)));
  }
  return out;
}

function sameGroups(
  a: Map<string, Map<PrefixId, Verdict>> | undefined,
  b: Map<string, Map<PrefixId, Verdict>> | undefined,
): boolean {
  const x = a ?? new Map<string, Map<PrefixId, Verdict>>();
  const y = b ?? new Map<string, Map<PrefixId, Verdict>>();
  if (x.size !== y.size) return false;
  for (const [gid, g] of x) {
    const h = y.get(gid);
    if (h === undefined || h.size !== g.size) return false;
    for (const [id, v] of g) if (h.get(id) !== v) return false;
  }
  return true;
}

/** Whether two tries hold the same entries. */
export function sameTrie(a: TrieContents, b: TrieContents): boolean {
  if (a.size !== b.size) return false;
  for (const [slot, groups] of a) if (!sameGroups(groups, b.get(slot))) return false;
  return true;
}

/**
 * Digest entries for what the trie gets wrong: one per endpoint whose trie
 * entries are not what its policy map's range entries derive, one per slot
 * with trie entries and no endpoint. None when the trie is right. No state
 * the control plane describes has such entries, so verify() then differs.
 */
export function trieMismatches(
  policies: { endpoint: string; entries: PolicyRecord[] }[],
  slots: Map<string, number>,
  trie: TrieContents,
): string[] {
  const out: string[] = [];
  const seen = new Set<number>();
  for (const p of policies) {
    const slot = slots.get(p.endpoint);
    if (slot === undefined) continue;
    seen.add(slot);
    if (!sameGroups(expectedRanges(p.entries), trie.get(slot))) {
      out.push(`policy-ranges|${p.endpoint}|differ`);
    }
  }
  for (const slot of trie.keys()) if (!seen.has(slot)) out.push(`policy-ranges|slot ${slot}|stray`);
  return out;
}

/** The mirror of what the trie holds (adoption): groups of each endpoint, with its logical range entries. */
export function rangeMirrorOf(
  policies: { endpoint: string; entries: PolicyRecord[] }[],
  slots: Map<string, number>,
  trie: TrieContents,
): RangeMirror {
  const out: RangeMirror = new Map();
  for (const p of policies) {
    const groups = new Map<string, RangeGroup>();
    const group = (k: { direction: number; protocol: number; identity: number }): RangeGroup => {
      const gid = rangeGroupId(k);
      let g = groups.get(gid);
      if (g === undefined) {
        g = {
          direction: k.direction,
          protocol: k.protocol,
          identity: k.identity,
          entries: new Map(),
          prefixes: new Map(),
        };
        groups.set(gid, g);
      }
      return g;
    };
    for (const e of p.entries) if (isRange(e)) group(e).entries.set(policyKeyId(e), e);
    const slot = slots.get(p.endpoint);
    for (const [gid, prefixes] of (slot === undefined ? undefined : trie.get(slot)) ?? []) {
      const [direction, protocol, identity] = gid.split('|').map(Number) as [
        number,
        number,
        number,
      ];
      group({ direction, protocol, identity }).prefixes = new Map(prefixes);
    }
    if (groups.size > 0) out.set(p.endpoint, groups);
  }
  return out;
}
