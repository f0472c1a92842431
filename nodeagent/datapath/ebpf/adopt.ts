import { Digest } from '../../../common/index.js';
import {
  digestOfContents,
  endpointDigestEntry,
  endpointName,
  ipcacheDigestEntry,
  serviceDigestEntry,
  serviceName,
} from '../entries.js';
import { encodeEpInfo, encodeSlot } from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import { Packed } from './packed.js';
import { emptyHeldPolicy, emptyMirror } from './plan.js';
import { rangeMirrorOf, sameTrie } from './ranges.js';
import { readPolicyMap, type HeldState } from './read-back.js';
import { readCopy } from './read.js';

/**
 * Takes what the active copy holds as the agent's state (as after an agent
 * restart), and makes the standby copy equal to it when it differs (a crash
 * between the two copies' writes).
 */
export function adoptState(maps: DatapathMaps, endpointSlots: number): HeldState {
  const active = maps.activeCopy();
  const { contents, slots, trie } = readCopy(maps, active);
  const m = emptyMirror();
  const digest = new Digest();
  for (const e of contents.ipcache) {
    m.ipcache.set(e.prefix, e.identity);
    digest.add(ipcacheDigestEntry(e.prefix, e.identity));
  }
  for (const ep of contents.endpoints) {
    const name = endpointName(ep);
    const slot = slots.get(name)!;
    m.endpoints.set(name, { record: ep, slot });
    digest.add(endpointDigestEntry(ep));
    const held = emptyHeldPolicy(name);
    const inner = maps.innerOf(active, slot);
    if (inner !== undefined) readPolicyMap(inner, held);
    m.policies.set(name, held);
    digest.merge(held.digest);
  }
  for (const s of contents.services) {
    m.services.set(serviceName(s), s);
    digest.add(serviceDigestEntry(s));
  }
  // The trie as it is (a wrong entry stays visible to verify() until an apply rewrites its group).
  m.ranges = rangeMirrorOf(contents.policies, slots, trie);
  const used = new Set(slots.values());
  const free: number[] = [];
  for (let s = endpointSlots - 1; s >= 0; s--) if (!used.has(s)) free.push(s);
  const standby = (1 - active) as Copy;
  const other = readCopy(maps, standby);
  if (digestOfContents(other.contents) !== digest.toString() || !sameTrie(other.trie, trie)) {
    resyncStandby(maps, active, standby, used, endpointSlots);
  }
  return { mirror: m, digest, free };
}

/** Copies the active copy onto the standby one. */
export function resyncStandby(
  maps: DatapathMaps,
  active: Copy,
  standby: Copy,
  used: Set<number>,
  endpointSlots: number,
): void {
  const from = maps.copies[active];
  const to = maps.copies[standby];
  for (const t of ['ipcache', 'epIps', 'services', 'ranges'] as const) {
    to[t].deleteMany(Packed.of(to[t].keySize, to[t].keys()));
    const got = from[t].dumpPacked();
    to[t].updateMany(got.keys, got.values);
  }
  for (let slot = 0; slot < endpointSlots; slot++) {
    const info = from.epInfo.lookup(encodeSlot(slot)) ?? encodeEpInfo(undefined);
    to.epInfo.update(encodeSlot(slot), info);
    if (!used.has(slot)) {
      to.policyOuter.delete(encodeSlot(slot));
      continue;
    }
    let inner = maps.innerOf(standby, slot);
    if (inner === undefined) {
      const [a, b] = maps.createInner(slot);
      inner = standby === 0 ? a : b;
      (standby === 0 ? b : a).close();
      maps.setOuter(standby, slot, inner);
      inner.close();
      inner = maps.innerOf(standby, slot)!;
    }
    inner.deleteMany(Packed.of(inner.keySize, inner.keys()));
    const source = maps.innerOf(active, slot);
    if (source !== undefined) {
      const got = source.dumpPacked();
      inner.updateMany(got.keys, got.values);
    }
  }
}
