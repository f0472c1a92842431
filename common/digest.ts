import {
  Direction,
  Verdict,
  type EndpointPolicy,
  type IpcacheShard,
  type ServiceImport,
} from '../proto/index.js';
import { murmurFinalize, murmurMix } from './murmur3.js';

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

/** The two 32-bit halves of an entry's 64-bit hash, written to `out` (no allocation). */
function hashInto(entry: string, out: Uint32Array): void {
  let hi = SEED_HI | 0;
  let lo = SEED_LO | 0;
  const n = entry.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const k = entry.charCodeAt(i) | (entry.charCodeAt(i + 1) << 16);
    hi = murmurMix(hi, k);
    lo = murmurMix(lo, k);
  }
  if (i < n) {
    // MurmurHash3's tail: mixed into h without the rotate-multiply step.
    let k = Math.imul(entry.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    hi ^= k;
    lo ^= k;
  }
  out[0] = murmurFinalize(hi ^ (n * 2));
  out[1] = murmurFinalize(lo ^ (n * 2));
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
    this.#minus(scratch[0]!, scratch[1]!);
    this.#count -= 1;
  }

  /** Adds another digest's sum (and entry count): the digest of the union of disjoint states. */
  merge(other: Digest): void {
    this.#plus(other.#hi, other.#lo);
    this.#count += other.#count;
  }

  /** Takes another digest's sum (and entry count) away: undoes `merge(other)`. */
  subtract(other: Digest): void {
    this.#minus(other.#hi, other.#lo);
    this.#count -= other.#count;
  }

  /** Adds an entry hashed by a PolicyEntryHasher (the same as `add` of the entry's string). */
  addHashed(h: PolicyEntryHasher): void {
    this.#plus(h.hi, h.lo);
    this.#count += 1;
  }

  /** Removes an entry hashed by a PolicyEntryHasher (the same as `remove` of the entry's string). */
  removeHashed(h: PolicyEntryHasher): void {
    this.#minus(h.hi, h.lo);
    this.#count -= 1;
  }

  #minus(hi: number, lo: number): void {
    // Subtracting x is adding its two's complement (2^64 - x).
    this.#plus((TWO32 - hi - (lo === 0 ? 0 : 1)) % TWO32, (TWO32 - lo) % TWO32);
  }

  #plus(hi: number, lo: number): void {
    // Both halves are below 2^32, so one subtraction keeps each below 2^32.
    let l = this.#lo + lo;
    let h = this.#hi + hi;
    if (l >= TWO32) {
      l -= TWO32;
      h += 1;
    }
    this.#lo = l;
    this.#hi = h >= TWO32 ? h - TWO32 : h;
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

/**
 * Hashes the digest entries of one endpoint's policy map from their fields,
 * without building their strings: `hash(...)` then `digest.addHashed(h)`
 * counts exactly as `digest.add(policyEntry(endpoint, e))` does (same
 * MurmurHash3 lanes, fed the same UTF-16 code units). The entry's common
 * prefix `policy|<endpoint>|` is hashed once, in the constructor. For the
 * datapaths' read-back of large policy maps, where building ~100,000
 * strings cost more than the kernel calls. Not reentrant: one hash at a time.
 */
export class PolicyEntryHasher {
  /** the last entry's hash, high and low halves */
  hi = 0;
  lo = 0;
  readonly #prefixHi: number;
  readonly #prefixLo: number;
  readonly #prefixPending: number;
  readonly #prefixLength: number;
  #h1 = 0;
  #h2 = 0;
  /** a code unit waiting for its pair, or -1 */
  #pending = -1;
  #length = 0;
  /** per direction value (0..255): h1, h2, pending, length after its name; length -1 = not yet */
  readonly #directions = new Int32Array(256 * 4).fill(-1);
  /** scratch for #digitsOf: a safe integer has at most 16 digits */
  readonly #digits = new Uint8Array(16);
  /** scratch for hash(): the code units after the direction; grows for long non-integer texts */
  #tail = new Uint16Array(128);

  constructor(endpoint: string) {
    this.#h1 = SEED_HI | 0;
    this.#h2 = SEED_LO | 0;
    this.#text(`policy|${endpoint}|`);
    this.#prefixHi = this.#h1;
    this.#prefixLo = this.#h2;
    this.#prefixPending = this.#pending;
    this.#prefixLength = this.#length;
  }

  /** Hashes `policyEntry(endpoint, {direction, identity, protocol, portLow, portHigh, verdict})` into hi/lo. */
  hash(
    direction: number,
    identity: number,
    protocol: number,
    portLow: number,
    portHigh: number,
    verdict: number,
  ): this {
    this.#afterDirection(direction);
    // The rest of the entry's code units into #tail, then mixed in one loop over locals.
    let n = this.#digitsOf(identity, 0);
    const tail = this.#tail;
    tail[n++] = PIPE;
    n = this.#digitsOf(protocol, n);
    tail[n++] = PIPE;
    n = this.#digitsOf(portLow, n);
    tail[n++] = DASH;
    n = this.#digitsOf(portHigh, n);
    tail[n++] = PIPE;
    const name = enumName(VERDICT_NAMES, Verdict, verdict);
    for (let i = 0; i < name.length; i++) tail[n++] = name.charCodeAt(i);
    let a = this.#h1;
    let b = this.#h2;
    let pending = this.#pending;
    let i = 0;
    if (pending >= 0 && n > 0) {
      const k = pending | (tail[0]! << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
      pending = -1;
      i = 1;
    }
    for (; i + 1 < n; i += 2) {
      const k = tail[i]! | (tail[i + 1]! << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
    }
    if (i < n) pending = tail[i]!;
    this.#h1 = a;
    this.#h2 = b;
    this.#pending = pending;
    this.#length += n;
    let h1 = this.#h1;
    let h2 = this.#h2;
    if (this.#pending >= 0) {
      let k = Math.imul(this.#pending, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h1 ^= k;
      h2 ^= k;
    }
    this.hi = murmurFinalize(h1 ^ (this.#length * 2));
    this.lo = murmurFinalize(h2 ^ (this.#length * 2));
    return this;
  }

  /** The state after `policy|<endpoint>|<direction name>|`: computed once per direction value, then copied. */
  #afterDirection(direction: number): void {
    const cached = direction >= 0 && direction < 256 && Number.isInteger(direction);
    const at = direction * 4;
    const known = this.#directions;
    if (cached && known[at + 3] !== -1) {
      this.#h1 = known[at]!;
      this.#h2 = known[at + 1]!;
      this.#pending = known[at + 2]!;
      this.#length = known[at + 3]!;
      return;
    }
    this.#h1 = this.#prefixHi;
    this.#h2 = this.#prefixLo;
    this.#pending = this.#prefixPending;
    this.#length = this.#prefixLength;
    this.#text(enumName(DIRECTION_NAMES, Direction, direction));
    this.#unit(PIPE);
    if (!cached) return;
    known[at] = this.#h1;
    known[at + 1] = this.#h2;
    known[at + 2] = this.#pending;
    known[at + 3] = this.#length;
  }

  #unit(c: number): void {
    this.#length += 1;
    if (this.#pending < 0) {
      this.#pending = c;
      return;
    }
    const k = this.#pending | (c << 16);
    this.#pending = -1;
    this.#h1 = murmurMix(this.#h1, k);
    this.#h2 = murmurMix(this.#h2, k);
  }

  #text(s: string): void {
    for (let i = 0; i < s.length; i++) this.#unit(s.charCodeAt(i));
  }

  /** Writes `${v}`'s code units (as a template literal writes v) into #tail at `at`; returns the offset after them. */
  #digitsOf(v: number, at: number): number {
    if (!Number.isSafeInteger(v) || v < 0) {
      const text = `${v}`;
      if (at + text.length + 64 > this.#tail.length) {
        const grown = new Uint16Array((at + text.length + 64) * 2);
        grown.set(this.#tail);
        this.#tail = grown;
      }
      for (let i = 0; i < text.length; i++) this.#tail[at++] = text.charCodeAt(i);
      return at;
    }
    const tail = this.#tail;
    if (v < 10) {
      tail[at] = ZERO + v;
      return at + 1;
    }
    const digits = this.#digits;
    let count = 0;
    // Small integers divide as int32 (most fields); others as doubles.
    while (v > 0x7fffffff) {
      const q = Math.floor(v / 10);
      digits[count++] = v - q * 10;
      v = q;
    }
    while (v > 0) {
      const q = (v / 10) | 0;
      digits[count++] = v - q * 10;
      v = q;
    }
    while (count > 0) tail[at++] = ZERO + digits[--count]!;
    return at;
  }
}

const PIPE = 0x7c;
const DASH = 0x2d;
const ZERO = 0x30;
/** `${Enum[v]}` for every value a kernel byte can hold, as policyEntry writes them ('undefined' where the enum names none). */
const DIRECTION_NAMES: readonly string[] = Array.from({ length: 256 }, (_, v) => `${Direction[v]}`);
const VERDICT_NAMES: readonly string[] = Array.from({ length: 256 }, (_, v) => `${Verdict[v]}`);

function enumName(
  names: readonly string[],
  e: Record<number, string | undefined>,
  v: number,
): string {
  return names[v] ?? `${e[v]}`;
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
