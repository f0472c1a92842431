import { Direction, Verdict, type PolicyEntry } from '../proto/index.js';

/**
 * The per-endpoint policy map: the one layout the control plane's compiler,
 * the emulated datapath and the eBPF program share. Entries keep the proto
 * `PolicyEntry` shape so resources, digests (common/digest.ts `policyEntry`)
 * and both datapaths agree on every field.
 *
 * Key: (direction, peer identity or 0 = any, protocol or 0 = any, port range).
 * Ports: `portLow = portHigh = 0` is "any port"; a single port p is `p..p`;
 * a range is `low..high`. Protocol 0 ("any") only comes with "any port": the
 * compiler expands a port with protocol ANY into TCP, UDP and SCTP entries, as
 * Cilium does, so a port always names its protocol.
 *
 * Value: allow | deny | audit. `redirect-l7` is reserved for L7 enforcement;
 * the proto has no verdict for it yet, so the compiler never emits it.
 */

export type PolicyMapKey = Omit<PolicyEntry, 'verdict'>;

export type PolicyVerdictName = 'allow' | 'deny' | 'audit' | 'redirect-l7';

export const PROTO_ANY = 0;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_SCTP = 132;
/** The protocols a port with protocol ANY expands into. */
export const PORT_PROTOCOLS: readonly number[] = [PROTO_TCP, PROTO_UDP, PROTO_SCTP];

const PROTOCOL_NUMBERS: Record<string, number> = {
  ANY: PROTO_ANY,
  TCP: PROTO_TCP,
  UDP: PROTO_UDP,
  SCTP: PROTO_SCTP,
};

/** IP protocol number of a Kubernetes/Cilium protocol name (undefined when unknown). */
export function protocolNumber(name: string): number | undefined {
  return PROTOCOL_NUMBERS[name.toUpperCase()];
}

export function protocolName(n: number): string {
  return Object.entries(PROTOCOL_NUMBERS).find(([, v]) => v === n)?.[0] ?? String(n);
}

export function isAnyPort(k: { portLow: number; portHigh: number }): boolean {
  return k.portLow === 0 && k.portHigh === 0;
}

/** A key as one string, usable as a Map key (same text as the datapath's policyKeyId). */
export function policyKeyString(k: PolicyMapKey): string {
  return `${k.direction}|${k.identity}|${k.protocol}|${k.portLow}|${k.portHigh}`;
}

export function parsePolicyKeyString(s: string): PolicyMapKey {
  const [direction, identity, protocol, portLow, portHigh] = s.split('|').map(Number);
  return {
    direction: direction as Direction,
    identity: identity ?? 0,
    protocol: protocol ?? 0,
    portLow: portLow ?? 0,
    portHigh: portHigh ?? 0,
  };
}

/** Canonical order: direction, identity, protocol, port range. */
export function comparePolicyKeys(a: PolicyMapKey, b: PolicyMapKey): number {
  return (
    a.direction - b.direction ||
    a.identity - b.identity ||
    a.protocol - b.protocol ||
    a.portLow - b.portLow ||
    a.portHigh - b.portHigh
  );
}

export function sortPolicyEntries<T extends PolicyMapKey>(entries: T[]): T[] {
  return entries.sort(comparePolicyKeys);
}

/**
 * Two verdicts for one key merge to the stronger: deny > audit > allow. (An
 * audit entry is a deny that is reported, not enforced.)
 */
export function mergeVerdicts(a: Verdict, b: Verdict): Verdict {
  const rank = (v: Verdict): number =>
    v === Verdict.VERDICT_DENY ? 3 : v === Verdict.VERDICT_AUDIT ? 2 : 1;
  return rank(a) >= rank(b) ? a : b;
}

export interface PolicyQuery {
  direction: Direction;
  /** the peer's identity */
  identity: number;
  protocol: number;
  port: number;
}

export interface PolicyLookup {
  verdict: 'allow' | 'deny' | 'audit';
  /** the entry that decided, or undefined when the direction's default decided */
  entry?: PolicyEntry;
}

function coversPort(e: PolicyEntry, port: number): boolean {
  return isAnyPort(e) || (port >= e.portLow && port <= e.portHigh);
}

/** 0 exact, 1 any-port, 2 any-identity, 3 any-any; -1 when the entry does not match. */
function level(e: PolicyEntry, q: PolicyQuery): number {
  if (e.direction !== q.direction) return -1;
  if (e.identity !== 0 && e.identity !== q.identity) return -1;
  if (e.protocol !== 0 && e.protocol !== q.protocol) return -1;
  if (!coversPort(e, q.port)) return -1;
  const anyPort = isAnyPort(e);
  return (e.identity === 0 ? 2 : 0) + (anyPort ? 1 : 0);
}

/**
 * Narrower port ranges first within a level (what an LPM lookup on port
 * prefixes yields); among any-port entries the protocol's before "any
 * protocol", the order the eBPF program looks them up in.
 */
function width(e: PolicyEntry): number {
  if (isAnyPort(e)) return (1 << 17) + (e.protocol === 0 ? 1 : 0);
  return e.portHigh - e.portLow + (e.protocol === 0 ? 1 << 16 : 0);
}

/**
 * The verdict the datapath gives a packet, with the precedence the eBPF
 * program implements:
 * 1. a DENY entry at any level wins (deny beats allow across all policies);
 * 2. an AUDIT entry at any level but the any-any one (an audited deny rule)
 *    wins next: allowed, reported as "would deny";
 * 3. otherwise the most specific entry decides, levels tried in order exact
 *    (identity, protocol, port) → any-port (identity) → any-identity
 *    (protocol, port) → any-any, narrowest port range first within a level;
 *    the any-any entry is how a direction in audit mode reports its default
 *    deny;
 * 4. no entry: deny when the direction is enforced, allow otherwise.
 * Pure; `entries` is not modified.
 */
export function lookupPolicy(
  entries: readonly PolicyEntry[],
  query: PolicyQuery,
  enforced: boolean,
): PolicyLookup {
  let best: { entry: PolicyEntry; level: number; width: number } | undefined;
  let audit: PolicyEntry | undefined;
  for (const e of entries) {
    const l = level(e, query);
    if (l < 0) continue;
    if (e.verdict === Verdict.VERDICT_DENY) return { verdict: 'deny', entry: e };
    if (e.verdict === Verdict.VERDICT_AUDIT && l < 3) audit ??= e;
    const w = width(e);
    if (best === undefined || l < best.level || (l === best.level && w < best.width)) {
      best = { entry: e, level: l, width: w };
    }
  }
  if (audit !== undefined) return { verdict: 'audit', entry: audit };
  if (best !== undefined) {
    return {
      verdict: best.entry.verdict === Verdict.VERDICT_AUDIT ? 'audit' : 'allow',
      entry: best.entry,
    };
  }
  return { verdict: enforced ? 'deny' : 'allow' };
}

export interface PortPrefix {
  /** first port of the block */
  port: number;
  /** significant high bits of the 16-bit port, 0..16 */
  prefixLen: number;
}

/**
 * A port range as the fewest aligned blocks (`port/prefixLen` over 16 bits),
 * the keys of an LPM-trie policy map. `0..0` ("any port") is `0/0`.
 */
export function portRangeToPrefixes(low: number, high: number): PortPrefix[] {
  if (low === 0 && high === 0) return [{ port: 0, prefixLen: 0 }];
  if (!(Number.isInteger(low) && Number.isInteger(high)) || low < 0 || high > 65535 || low > high) {
    throw new RangeError(`port range ${low}-${high} is invalid`);
  }
  const out: PortPrefix[] = [];
  let start = low;
  while (start <= high) {
    // The largest aligned block starting at `start` that stays within the range.
    let size = start === 0 ? 1 << 16 : start & -start;
    while (start + size - 1 > high) size >>= 1;
    out.push({ port: start, prefixLen: 16 - Math.log2(size) });
    start += size;
  }
  return out;
}

/** The range a port prefix covers. */
export function prefixToPortRange(p: PortPrefix): { low: number; high: number } {
  const size = 1 << (16 - p.prefixLen);
  return { low: p.port, high: p.port + size - 1 };
}

export function verdictName(v: Verdict): PolicyVerdictName {
  return v === Verdict.VERDICT_DENY ? 'deny' : v === Verdict.VERDICT_AUDIT ? 'audit' : 'allow';
}
