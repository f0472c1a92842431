import type {
  DatapathCapacity,
  Direction,
  NamedPort,
  ServiceImport,
  Verdict,
} from '../../proto/index.js';

export type { DatapathCapacity };

/**
 * The records a datapath holds, shaped like the kernel maps of the eBPF
 * backend: ipcache (LPM prefix -> identity), the endpoint table, one policy
 * map per endpoint and the service table. Endpoints are named by
 * cluster/namespace/name (never by ifindex) so every backend reports the same
 * digest for the same state.
 */
export interface IpcacheRecord {
  /** CIDR, e.g. 10.1.0.5/32 or fd00::5/128 */
  prefix: string;
  identity: number;
}

export interface EndpointRecord {
  cluster: string;
  namespace: string;
  name: string;
  identity: number;
  /** in the producer's canonical order; kept as given */
  ips: string[];
  namedPorts: NamedPort[];
  ingressEnforced: boolean;
  egressEnforced: boolean;
}

/** The key of one policy map entry (the eBPF map key minus the endpoint, which selects the map). */
export interface PolicyKey {
  direction: Direction;
  /** peer identity; 0 = any */
  identity: number;
  /** IP protocol number; 0 = any */
  protocol: number;
  /** 0 = any */
  portLow: number;
  portHigh: number;
}

export interface PolicyRecord extends PolicyKey {
  verdict: Verdict;
}

export type ServiceRecord = ServiceImport;

/** Upserts carry the name of the resource they came from, so a rejection can name it. */
export interface Attributed {
  /** name of the resource (within its type) this entry comes from */
  resource: string;
}

/** The changes to one endpoint's policy map. */
export interface PolicyMapChange extends Attributed {
  /** cluster/namespace/name */
  endpoint: string;
  upserts: PolicyRecord[];
  deletes: PolicyKey[];
}

/**
 * One revision's worth of entry-level changes, applied as one unit.
 *
 * Rules every backend enforces (violations are VALIDATION errors):
 * - a key appears at most once per table across upserts and deletes;
 * - deleting an endpoint drops its whole policy map (as unpinning the
 *   per-endpoint map does in the kernel), so no policy change may name it;
 * - a policy change names an endpoint that exists after the change; a newly
 *   upserted endpoint starts with an empty policy map.
 * Deleting a key that is not held is a no-op (deletes are idempotent).
 * The datapath copies what it stores; callers keep ownership of the change.
 */
export interface DatapathChange {
  ipcache: { upserts: (IpcacheRecord & Attributed)[]; deletes: string[] };
  endpoints: { upserts: (EndpointRecord & Attributed)[]; deletes: string[] };
  policies: PolicyMapChange[];
  services: { upserts: (ServiceRecord & Attributed)[]; deletes: string[] };
}

/** A full read of a datapath, in no particular order. Owned by the caller. */
export interface DatapathContents {
  ipcache: IpcacheRecord[];
  endpoints: EndpointRecord[];
  policies: { endpoint: string; entries: PolicyRecord[] }[];
  services: ServiceRecord[];
}

export interface DatapathCounts {
  ipcache: number;
  endpoints: number;
  /** over all endpoints */
  policyEntries: number;
  /** the fullest endpoint's policy map */
  maxPolicyEntriesPerEndpoint: number;
  services: number;
}

/**
 * A node's datapath (emulated now, eBPF maps later). Owned by the composition
 * root; the node agent uses it but neither creates nor closes it.
 *
 * Concurrency: one call at a time (apply, verify and read must not overlap —
 * the agent serializes them); `digest()`, `counts()` and `capacity` are cheap
 * and may be called between calls.
 */
export interface Datapath {
  /** backend name and the most it can hold; constant for its lifetime */
  readonly capacity: DatapathCapacity;
  /**
   * Applies a change all-or-nothing. On failure throws a DatapathError
   * (code VALIDATION or CAPACITY, naming the offending resources) and the
   * state is exactly as before. An abort before the commit point rejects
   * with the signal's reason and changes nothing.
   */
  apply(change: DatapathChange, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Digest of what the datapath holds, maintained incrementally by reading back what each apply changed. */
  digest(): string;
  /** Recomputes the digest from a full read of the datapath (detects tampering after an apply). */
  verify(opts?: { signal?: AbortSignal }): Promise<string>;
  /** A full read of what the datapath holds. */
  read(opts?: { signal?: AbortSignal }): Promise<DatapathContents>;
  counts(): DatapathCounts;
  /**
   * Whether the ipcache holds exactly `prefix`, as this datapath last wrote
   * or adopted it: a lookup in its own copy, no kernel read (cheap, like
   * `counts()`).
   */
  holdsIpcachePrefix(prefix: string): boolean;
  /** Releases handles. Never clears state: stopping is not removing. Idempotent. */
  close(): Promise<void>;
}
