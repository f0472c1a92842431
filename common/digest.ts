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
 * Adding and removing entries updates a digest in O(delta). A policy entry
 * (the bulk of a node's state: up to 100,000 per revision) is text up to its
 * endpoint and binary after it (`policyEntry`): the fields as six 16-bit
 * code units, so hashing one from a kernel map's words takes three blocks.
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

/**
 * Both lanes' state after mixing `text`'s whole 32-bit blocks (pairs of
 * UTF-16 code units) from the seeds, written to `out` (no allocation);
 * returns how many code units were mixed (a last odd unit is left).
 */
function mixBlocks(text: string, out: Uint32Array): number {
  let hi = SEED_HI | 0;
  let lo = SEED_LO | 0;
  const n = text.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
    hi = murmurMix(hi, k);
    lo = murmurMix(lo, k);
  }
  out[0] = hi;
  out[1] = lo;
  return i;
}

/** The two 32-bit halves of an entry's 64-bit hash, written to `out` (no allocation). */
function hashInto(entry: string, out: Uint32Array): void {
  const n = entry.length;
  const i = mixBlocks(entry, out);
  let hi = out[0]! | 0;
  let lo = out[1]! | 0;
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

/**
 * 16 hex digits, formatted from 16-bit quarters: a 32-bit half at or above
 * 2^31 is a heap number, not a small integer, and V8 formats those in radix
 * 16 on a slow path (~730 against ~220 ns per digest; every ACK and every
 * agent apply formats one).
 */
function hex64(hi: number, lo: number): string {
  return hex16(hi >>> 16) + hex16(hi & 0xffff) + hex16(lo >>> 16) + hex16(lo & 0xffff);
}

function hex16(quarter: number): string {
  return quarter.toString(16).padStart(4, '0');
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

  /** Whether both hold the same sum over the same number of entries. */
  equals(other: Digest): boolean {
    return this.#hi === other.#hi && this.#lo === other.#lo && this.#count === other.#count;
  }

  /** A digest from its sum (two 32-bit halves) and entry count, as computed elsewhere (the kernel). */
  static fromSum(hi: number, lo: number, entries: number): Digest {
    const d = new Digest();
    d.#hi = hi >>> 0;
    d.#lo = lo >>> 0;
    d.#count = entries;
    return d;
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
  return `policy|${endpoint}|${policyFields(e.direction, e.identity, e.protocol, e.portLow, e.portHigh, e.verdict)}`;
}

/**
 * A policy entry's fields after `policy|<endpoint>|`. Binary where every
 * field fits what a kernel entry can hold (direction, protocol and verdict
 * one byte each, identity 32 bits, ports 16 bits): six UTF-16 code units,
 * the three 32-bit blocks `identity`, `direction | protocol << 8 |
 * portLow << 16` and `portHigh | verdict << 16` (low unit first) — three
 * MurmurHash3 blocks per lane where the prefix has an even length. Values
 * no kernel entry can hold (an unknown enum number from the wire, a port
 * above 65535) keep a text form (`~<direction name>|<identity>|...`, always
 * longer than six units), so the function stays total and injective on its
 * fields.
 */
function policyFields(
  direction: number,
  identity: number,
  protocol: number,
  portLow: number,
  portHigh: number,
  verdict: number,
): string {
  if (fitsBinary(direction, identity, protocol, portLow, portHigh, verdict))
    return String.fromCharCode(
      identity & 0xffff,
      identity >>> 16,
      direction | (protocol << 8),
      portLow,
      portHigh,
      verdict,
    );
  return `~${enumName(DIRECTION_NAMES, Direction, direction)}|${identity}|${protocol}|${portLow}-${portHigh}|${enumName(VERDICT_NAMES, Verdict, verdict)}`;
}

/** Whether a policy entry's fields have the binary form (see policyFields). */
function fitsBinary(
  direction: number,
  identity: number,
  protocol: number,
  portLow: number,
  portHigh: number,
  verdict: number,
): boolean {
  return (
    (direction & 0xff) === direction &&
    (protocol & 0xff) === protocol &&
    (verdict & 0xff) === verdict &&
    (portLow & 0xffff) === portLow &&
    (portHigh & 0xffff) === portHigh &&
    identity >>> 0 === identity
  );
}

/**
 * Hashes the digest entries of one endpoint's policy map from their fields,
 * without building their strings: `hash(...)` then `digest.addHashed(h)`
 * counts exactly as `digest.add(policyEntry(endpoint, e))` does (same
 * MurmurHash3 lanes, fed the same UTF-16 code units). The entry's common
 * prefix `policy|<endpoint>|` is hashed once, in the constructor; the
 * fields' binary form is three or four blocks per lane, built from the
 * numbers with shifts. For the datapaths' read-back of large policy maps.
 * Not reentrant: one hash at a time.
 */
export class PolicyEntryHasher {
  /** the last entry's hash, high and low halves */
  hi = 0;
  lo = 0;
  readonly #endpoint: string;
  readonly #prefixHi: number;
  readonly #prefixLo: number;
  /** the prefix's last code unit when its length is odd (it pairs with the fields' first), else -1 */
  readonly #prefixPending: number;
  /** the whole entry's length in bytes (UTF-16: 2 per unit), binary form */
  readonly #bytes: number;

  constructor(endpoint: string) {
    this.#endpoint = endpoint;
    const prefix = `policy|${endpoint}|`;
    const n = prefix.length;
    const lanes = new Uint32Array(2);
    const i = mixBlocks(prefix, lanes);
    this.#prefixHi = lanes[0]! | 0;
    this.#prefixLo = lanes[1]! | 0;
    this.#prefixPending = i < n ? prefix.charCodeAt(i) : -1;
    this.#bytes = (n + 6) * 2;
  }

  /**
   * The prefix's hashed state: both lanes after the prefix's whole 4-byte
   * blocks, its last UTF-16 unit when its length is odd (else -1) and an
   * entry's length in bytes. What an in-kernel hash of the same entries
   * starts from (bpf/meshplane.h, struct policy_digest_ctx).
   */
  get prefixState(): { hi: number; lo: number; pending: number; bytes: number } {
    return {
      hi: this.#prefixHi >>> 0,
      lo: this.#prefixLo >>> 0,
      pending: this.#prefixPending,
      bytes: this.#bytes,
    };
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
    if (!fitsBinary(direction, identity, protocol, portLow, portHigh, verdict)) {
      hashInto(
        `policy|${this.#endpoint}|${policyFields(direction, identity, protocol, portLow, portHigh, verdict)}`,
        scratch,
      );
      this.hi = scratch[0]!;
      this.lo = scratch[1]!;
      return this;
    }
    let a = this.#prefixHi;
    let b = this.#prefixLo;
    const mid = direction | (protocol << 8);
    const pending = this.#prefixPending;
    let k: number;
    if (pending < 0) {
      // Units: identity (2), mid, portLow, portHigh, verdict: three whole blocks.
      k = identity | 0;
      a = murmurMix(a, k);
      b = murmurMix(b, k);
      k = mid | (portLow << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
      k = portHigh | (verdict << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
    } else {
      // The prefix's last unit pairs with the identity's low half; the verdict is the tail.
      k = pending | ((identity & 0xffff) << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
      k = (identity >>> 16) | (mid << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
      k = portLow | (portHigh << 16);
      a = murmurMix(a, k);
      b = murmurMix(b, k);
      k = Math.imul(verdict, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      a ^= k;
      b ^= k;
    }
    this.hi = murmurFinalize(a ^ this.#bytes);
    this.lo = murmurFinalize(b ^ this.#bytes);
    return this;
  }
}

/** `${Enum[v]}` for every value a kernel byte can hold ('undefined' where the enum names none). */
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
