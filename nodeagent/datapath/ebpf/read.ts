import { Digest } from '../../../common/index.js';
import { contentsDigest, endpointName } from '../entries.js';
import type { DatapathContents, EndpointRecord, PolicyRecord } from '../types.js';
import { noDigests, type KernelDigestCounts, type PolicyMapDigester } from './kernel-digest.js';
import type { DumpedRecords } from './kernel-map.js';
import {
  decodeEpInfo,
  decodeIpcacheKey,
  decodeIpcacheValue,
  decodePolicyAt,
  decodeServiceValue,
} from './layout.js';
import type { Copy, DatapathMaps } from './maps.js';
import type { Mirror } from './plan.js';
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
  const read = readTables(maps, copy);
  for (const [name, slot] of read.slots) {
    const inner = maps.innerOf(copy, slot);
    read.contents.policies.push({
      endpoint: name,
      entries: inner === undefined ? [] : policyRecords(inner.dumpPacked()),
    });
  }
  return read;
}

/** One copy's maps but the policy maps (`contents.policies` left empty). */
function readTables(maps: DatapathMaps, copy: Copy): CopyRead {
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
    contents.endpoints.push(ep);
    slots.set(endpointName(ep), k.readUInt32LE(0));
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

/** An inner policy map's entries as dumped (batch lookups into packed buffers: no Buffer per entry). */
function policyRecords({ keys, values }: DumpedRecords): PolicyRecord[] {
  const kb = keys.bytes();
  const vb = values.bytes();
  const out: PolicyRecord[] = new Array<PolicyRecord>(keys.count);
  for (let i = 0; i < keys.count; i++)
    out[i] = decodePolicyAt(kb, i * keys.size, vb, i * values.size);
  return out;
}

/**
 * The digest of what one copy holds (verify()): the digest entries of its
 * maps, plus one entry per endpoint whose port-range trie entries are not
 * what its range entries derive (and per stray slot), so a trie altered
 * behind the agent's back changes the digest although the logical entries
 * are intact.
 *
 * The policy maps are read as the commit reads a large write back: each one
 * the agent holds is first digested in the kernel (PolicyMapDigester, on a
 * worker thread, no entry copied out). Equal to the digest the agent holds,
 * the map holds what the agent wrote, so its trie entries are checked
 * against the range entries the agent wrote (the mirror's). Otherwise —
 * another digest (an entry written behind the agent's back), a refused run,
 * an endpoint the agent does not hold — the map is dumped and its entries
 * are what is digested and checked. The other maps are read whole.
 */
export async function verifyCopy(
  maps: DatapathMaps,
  copy: Copy,
  mirror: Pick<Mirror, 'policies' | 'ranges'>,
  digester: PolicyMapDigester,
): Promise<{ digest: string; policyMaps: KernelDigestCounts }> {
  const { contents, slots, trie } = readTables(maps, copy);
  const digested = new Digest();
  const policyMaps = noDigests();
  // For the trie check: range entries are all expectedRanges looks at.
  const written: { endpoint: string; entries: PolicyRecord[] }[] = [];
  for (const [name, slot] of slots) {
    const inner = maps.innerOf(copy, slot);
    if (inner === undefined) {
      written.push({ endpoint: name, entries: [] });
      continue;
    }
    const held = mirror.policies.get(name);
    if (held !== undefined) {
      const kernel = await digester.digest(slot, copy, held.hasher).catch(() => undefined);
      if (kernel?.equals(held.digest) === true) {
        policyMaps.matched += 1;
        digested.merge(kernel);
        const entries: PolicyRecord[] = [];
        for (const g of mirror.ranges.get(name)?.values() ?? [])
          entries.push(...g.entries.values());
        written.push({ endpoint: name, entries });
        continue;
      }
      policyMaps[kernel === undefined ? 'refused' : 'mismatched'] += 1;
    }
    const entries = policyRecords(await inner.dumpAsync());
    contents.policies.push({ endpoint: name, entries });
    written.push({ endpoint: name, entries });
  }
  const d = contentsDigest(contents);
  d.merge(digested);
  for (const e of trieMismatches(written, slots, trie)) d.add(e);
  return { digest: d.toString(), policyMaps };
}
