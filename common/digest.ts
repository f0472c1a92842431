import {
  Direction,
  Verdict,
  type EndpointPolicy,
  type IpcacheShard,
  type ServiceImport,
} from '../proto/index.js';

/**
 * The digest of a node's logical state: an order-independent hash, the sum
 * (mod 2^64) of one 64-bit hash per state entry. Entries are canonical strings that
 * name endpoints by cluster/namespace/pod, never by ifindex, so the control
 * plane (from resources), the emulated datapath and the eBPF datapath (from
 * what the kernel maps hold) compute the same number for the same state.
 * Adding and removing entries updates a digest in O(delta).
 *
 * The per-entry hash detects divergence (a lost write, a map altered behind
 * the agent's back); it is not meant to resist an adversary who already has
 * root. It is MurmurHash3 (x86, 32-bit) run twice with two seeds over the
 * entry's UTF-16 code units, two units per 32-bit block: the two results are
 * the high and low halves of the 64-bit entry hash. Pure JavaScript on small
 * integers: a native call per entry (node:crypto) costs more than the hash,
 * and a BigInt per entry more than both.
 */

const SEED_HI = 0x9e3779b9;
const SEED_LO = 0x85ebca6b;
const TWO32 = 0x1_0000_0000;

/** MurmurHash3's finalizer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function mixBlock(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The two 32-bit halves of an entry's 64-bit hash, written to `out` (no allocation). */
function hashInto(entry: string, out: Uint32Array): void {
  let hi = SEED_HI | 0;
  let lo = SEED_LO | 0;
  const n = entry.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const k = entry.charCodeAt(i) | (entry.charCodeAt(i + 1) << 16);
    hi = mixBlock(hi, k);
    lo = mixBlock(lo, k);
  }
  if (i < n) {
    // MurmurHash3's tail: mixed into h without the rotate-multiply step.
    let k = Math.imul(entry.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    hi ^= k;
    lo ^= k;
  }
  out[0] = fmix32(hi ^ (n * 2));
  out[1] = fmix32(lo ^ (n * 2));
}

const scratch = new Uint32Array(2);

/** An entry's 64-bit hash as 16 hex digits (for tests and tools; the digest sums the halves directly). */
export function entryHash(entry: string): string {
  hashInto(entry, scratch);
  return hex64(scratch[0]!, scratch[1]!);
}

function hex64(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** A sum of entry hashes mod 2^64, kept as two 32-bit halves. */
export class Digest {
  #hi = 0;
  #lo = 0;
  #count = 0;

  add(entry: string): void {
    hashInto(entry, scratch);
    this.#plus(scratch[0]!, scratch[1]!);
    this.#count += 1;
  }

  remove(entry: string): void {
    hashInto(entry, scratch);
    // Subtracting x is adding its two's complement (2^64 - x).
    const lo = scratch[1]!;
    const hi = scratch[0]!;
    this.#plus((TWO32 - hi - (lo === 0 ? 0 : 1)) % TWO32, (TWO32 - lo) % TWO32);
    this.#count -= 1;
  }

  /** Adds another digest's sum (and entry count): the digest of the union of disjoint states. */
  merge(other: Digest): void {
    this.#plus(other.#hi, other.#lo);
    this.#count += other.#count;
  }

  #plus(hi: number, lo: number): void {
    const l = this.#lo + lo;
    const carry = l >= TWO32 ? 1 : 0;
    this.#lo = l - carry * TWO32;
    this.#hi = (this.#hi + hi + carry) % TWO32;
  }

  get entries(): number {
    return this.#count;
  }

  /** 16 hex digits */
  toString(): string {
    return hex64(this.#hi, this.#lo);
  }

  static of(entries: Iterable<string>): Digest {
    const d = new Digest();
    for (const e of entries) d.add(e);
    return d;
  }
}

export function endpointName(ep: { cluster: string; namespace: string; name: string }): string {
  return `${ep.cluster}/${ep.namespace}/${ep.name}`;
}

export function ipcacheEntry(prefix: string, identity: number): string {
  return `ipcache|${prefix}|${identity}`;
}

export function endpointEntry(ep: EndpointPolicy): string {
  const ports = ep.namedPorts.map((p) => `${p.name}:${p.port}/${p.protocol}`).join(',');
  return `endpoint|${endpointName(ep)}|${ep.identity}|${ep.ips.join(',')}|${ports}|in=${ep.ingressEnforced ? 1 : 0}|eg=${ep.egressEnforced ? 1 : 0}`;
}

export function policyEntry(
  endpoint: string,
  e: {
    direction: Direction;
    identity: number;
    protocol: number;
    portLow: number;
    portHigh: number;
    verdict: Verdict;
  },
): string {
  return `policy|${endpoint}|${Direction[e.direction]}|${e.identity}|${e.protocol}|${e.portLow}-${e.portHigh}|${Verdict[e.verdict]}`;
}

export function serviceEntry(svc: ServiceImport): string {
  const ports = svc.ports.map((p) => `${p.name}:${p.port}/${p.protocol}`).join(',');
  const backends = svc.backends
    .map(
      (b) =>
        `${b.cluster}@${b.ip}[${b.ports.map((p) => `${p.name}:${p.port}/${p.protocol}`).join(',')}]`,
    )
    .join(',');
  return `service|${svc.namespace}/${svc.name}|${svc.type}|${svc.ips.join(',')}|${ports}|${backends}`;
}

/** The state entries one resource contributes. */
export function entriesOfIpcacheShard(shard: IpcacheShard): string[] {
  return shard.entries.map((e) => ipcacheEntry(e.prefix, e.identity));
}

export function entriesOfEndpoint(ep: EndpointPolicy): string[] {
  const name = endpointName(ep);
  return [endpointEntry(ep), ...ep.entries.map((e) => policyEntry(name, e))];
}

export function entriesOfService(svc: ServiceImport): string[] {
  return [serviceEntry(svc)];
}
