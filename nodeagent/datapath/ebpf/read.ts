import { contentsDigest, endpointName } from '../entries.js';
import type { DatapathContents, EndpointRecord, PolicyRecord } from '../types.js';
import type { KernelMap } from './kernel-map.js';
import {
  decodeEpInfo,
  decodeIpcacheKey,
  decodeIpcacheValue,
  decodePolicyAt,
  decodeServiceValue,
} from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import { decodeTrie, trieMismatches, type TrieContents } from './ranges.js';

export interface CopyRead {
  contents: DatapathContents;
  /** endpoint name -> slot */
  slots: Map<string, number>;
  /** the port-range trie of the copy */
  trie: TrieContents;
}

/**
 * A full read of one copy of the revisioned maps. Endpoints come from
 * ep_info (by slot); each endpoint's policy from its inner map in that copy.
 */
export function readCopy(maps: DatapathMaps, copy: Copy): CopyRead {
  const m = maps.copies[copy];
  const contents: DatapathContents = { ipcache: [], endpoints: [], policies: [], services: [] };
  for (const [k, v] of m.ipcache.dump()) {
    contents.ipcache.push({ prefix: decodeIpcacheKey(k), identity: decodeIpcacheValue(v) });
  }
  const slots = new Map<string, number>();
  for (const [k, v] of m.epInfo.dump()) {
    let ep: EndpointRecord | undefined;
    try {
      ep = decodeEpInfo(v);
    } catch {
      continue; // not a record this layout wrote (garbage written behind our back)
    }
    if (ep === undefined) continue;
    const slot = k.readUInt32LE(0);
    const name = endpointName(ep);
    contents.endpoints.push(ep);
    slots.set(name, slot);
    const inner = maps.innerOf(copy, slot);
    contents.policies.push({ endpoint: name, entries: inner === undefined ? [] : policyOf(inner) });
  }
  for (const [, v] of m.services.dump()) {
    try {
      contents.services.push(decodeServiceValue(v));
    } catch {
      continue;
    }
  }
  return { contents, slots, trie: decodeTrie(m.ranges.dumpPacked()) };
}

/** An inner policy map's entries (batch lookups into packed buffers: no Buffer per entry). */
function policyOf(inner: KernelMap): PolicyRecord[] {
  const { keys, values } = inner.dumpPacked();
  const kb = keys.bytes();
  const vb = values.bytes();
  const out: PolicyRecord[] = new Array<PolicyRecord>(keys.count);
  for (let i = 0; i < keys.count; i++)
    out[i] = decodePolicyAt(kb, i * keys.size, vb, i * values.size);
  return out;
}

/**
 * The digest of a full read of one copy: its contents' digest entries, plus
 * one entry per endpoint whose port-range trie entries are not what its range
 * entries derive (and per stray slot), so a trie altered behind the agent's
 * back changes the digest although the logical entries are intact.
 */
export function digestOfCopy(maps: DatapathMaps, copy: Copy): string {
  const { contents, slots, trie } = readCopy(maps, copy);
  const d = contentsDigest(contents);
  for (const e of trieMismatches(contents.policies, slots, trie)) d.add(e);
  return d.toString();
}
