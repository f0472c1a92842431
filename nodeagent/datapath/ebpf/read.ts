import { Digest } from '../../../common/index.js';
import { contentsDigest, endpointName, ipcacheDigestEntry } from '../entries.js';
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
 * On this thread (opening: adoption).
 */
export function readCopy(maps: DatapathMaps, copy: Copy): CopyRead {
  const m = maps.copies[copy];
  const ipcache = m.ipcache.dumpPacked();
  const read = decodeTables({
    epInfo: m.epInfo.dumpPacked(),
    services: m.services.dumpPacked(),
    ranges: m.ranges.dumpPacked(),
  });
  read.contents.ipcache = ipcacheRecords(ipcache);
  for (const [name, slot] of read.slots) {
    const inner = maps.innerOf(copy, slot);
    read.contents.policies.push({
      endpoint: name,
      entries: inner === undefined ? [] : policyRecords(inner.dumpPacked()),
    });
  }
  return read;
}

/** `readCopy` with the kernel's reads on koffi worker threads (read()). */
export async function readCopyAsync(maps: DatapathMaps, copy: Copy): Promise<CopyRead> {
  const dumps = await dumpTablesAsync(maps, copy);
  const read = decodeTables(dumps);
  read.contents.ipcache = ipcacheRecords(dumps.ipcache);
  for (const [name, slot] of read.slots) {
    const inner = maps.innerOf(copy, slot);
    read.contents.policies.push({
      endpoint: name,
      entries: inner === undefined ? [] : policyRecords(await inner.dumpAsync()),
    });
  }
  return read;
}

interface TableDumps {
  ipcache: DumpedRecords;
  epInfo: DumpedRecords;
  services: DumpedRecords;
  ranges: DumpedRecords;
}

/** One copy's maps but the policy maps, as the kernel gives them, read on worker threads. */
async function dumpTablesAsync(maps: DatapathMaps, copy: Copy): Promise<TableDumps> {
  const m = maps.copies[copy];
  // All settle before anything is decoded or thrown: no read outlives the call (close() waits for it).
  const [ipcache, epInfo, services, ranges] = await Promise.allSettled([
    m.ipcache.dumpAsync(),
    m.epInfo.dumpAsync(),
    m.services.dumpAsync(),
    m.ranges.dumpAsync(),
  ]);
  return {
    ipcache: fulfilled(ipcache),
    epInfo: fulfilled(epInfo),
    services: fulfilled(services),
    ranges: fulfilled(ranges),
  };
}

/** Entries hashed per turn of the event loop by `ipcacheDigest`. */
const DIGEST_SLICE = 4096;

function ipcacheRecords(dump: DumpedRecords): DatapathContents['ipcache'] {
  const out: DatapathContents['ipcache'] = [];
  for (let i = 0; i < dump.keys.count; i++)
    out.push({
      prefix: decodeIpcacheKey(dump.keys.at(i)),
      identity: decodeIpcacheValue(dump.values.at(i)),
    });
  return out;
}

/** The digest entries of an ipcache dump, DIGEST_SLICE at a time with the event loop let run between. */
async function ipcacheDigest(dump: DumpedRecords): Promise<Digest> {
  const d = new Digest();
  for (let i = 0; i < dump.keys.count; i++) {
    if (i > 0 && i % DIGEST_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
    d.add(
      ipcacheDigestEntry(decodeIpcacheKey(dump.keys.at(i)), decodeIpcacheValue(dump.values.at(i))),
    );
  }
  return d;
}

function fulfilled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/** The endpoints (with their slots), services and port-range trie of one copy; `contents.ipcache` and `policies` left empty. */
function decodeTables(d: Omit<TableDumps, 'ipcache'>): CopyRead {
  const contents: DatapathContents = { ipcache: [], endpoints: [], policies: [], services: [] };
  const slots = new Map<string, number>();
  for (let i = 0; i < d.epInfo.keys.count; i++) {
    let ep: EndpointRecord | undefined;
    try {
      ep = decodeEpInfo(d.epInfo.values.at(i));
    } catch {
      continue; // not a record this layout wrote (garbage written behind our back)
    }
    if (ep === undefined) continue;
    contents.endpoints.push(ep);
    slots.set(endpointName(ep), d.epInfo.keys.at(i).readUInt32LE(0));
  }
  for (let i = 0; i < d.services.keys.count; i++) {
    try {
      contents.services.push(decodeServiceValue(d.services.values.at(i)));
    } catch {
      continue;
    }
  }
  return { contents, slots, trie: decodeTrie(d.ranges) };
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
 * are what is digested and checked. The other maps are read whole, every
 * kernel read on a worker thread (the LPM tries by bpf/map-ops.c's walk),
 * and the ipcache hashed a slice at a time: a 60,000-prefix ipcache holds
 * the event loop for milliseconds, not for the whole walk.
 */
export async function verifyCopy(
  maps: DatapathMaps,
  copy: Copy,
  mirror: Pick<Mirror, 'policies' | 'ranges'>,
  digester: PolicyMapDigester,
): Promise<{ digest: string; policyMaps: KernelDigestCounts }> {
  const dumps = await dumpTablesAsync(maps, copy);
  const { contents, slots, trie } = decodeTables(dumps);
  // The ipcache's entries and the in-kernel digests of the policy maps that match. The
  // mesh-wide ipcache (tens of thousands of prefixes) is hashed a slice at a time.
  const hashed = await ipcacheDigest(dumps.ipcache);
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
        hashed.merge(kernel);
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
  d.merge(hashed);
  for (const e of trieMismatches(written, slots, trie)) d.add(e);
  return { digest: d.toString(), policyMaps };
}
