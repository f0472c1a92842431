import { Digest, MeshError } from '../../common/index.js';
import { checkChange, type DatapathView } from './check.js';
import {
  copyPolicyRecord,
  digestOfContents,
  endpointDigestEntry,
  endpointName,
  ipcacheDigestEntry,
  policyDigestEntry,
  policyKeyId,
  serviceDigestEntry,
  serviceName,
} from './entries.js';
import { EmulatedMaps } from './emulated-maps.js';
import { DatapathError } from './errors.js';
import type {
  Datapath,
  DatapathCapacity,
  DatapathChange,
  DatapathContents,
  DatapathCounts,
  EndpointRecord,
  PolicyRecord,
  ServiceRecord,
} from './types.js';

export const DEFAULT_CAPACITY = {
  ipcacheEntries: 524288,
  endpoints: 1024,
  policyEntriesPerEndpoint: 16384,
} as const;

export interface EmulatedDatapathOptions {
  ipcacheEntries?: number;
  endpoints?: number;
  policyEntriesPerEndpoint?: number;
  /** maps to adopt (as an agent restart adopts pinned maps); new empty maps by default */
  maps?: EmulatedMaps;
  /**
   * One string per ipcache prefix, shared by the emulated datapaths of one
   * process (many emulated agents in a benchmark worker hold the same mesh's
   * prefixes): a prefix new to this datapath's map is stored as the pool's
   * string. Entries are never removed, so the pool holds every prefix it has
   * seen; leave it out for a single agent.
   */
  prefixPool?: Map<string, string>;
}

/**
 * The datapath without a kernel: the same checks, entry-level writes and
 * read-back digest as the eBPF backend, over in-memory maps.
 */
export class EmulatedDatapath implements Datapath {
  readonly capacity: DatapathCapacity;
  readonly #maps: EmulatedMaps;
  readonly #digest: Digest;
  readonly #prefixPool: Map<string, string> | undefined;
  /** one view for every check (built once: closures cost per apply, under tsx's keepNames too) */
  readonly #view: DatapathView;
  #busy = false;

  constructor(opts: EmulatedDatapathOptions = {}) {
    this.capacity = {
      backend: 'emulated',
      ipcacheEntries: opts.ipcacheEntries ?? DEFAULT_CAPACITY.ipcacheEntries,
      endpoints: opts.endpoints ?? DEFAULT_CAPACITY.endpoints,
      policyEntriesPerEndpoint:
        opts.policyEntriesPerEndpoint ?? DEFAULT_CAPACITY.policyEntriesPerEndpoint,
    };
    this.#maps = opts.maps ?? new EmulatedMaps();
    this.#prefixPool = opts.prefixPool;
    // Adopted maps may already hold state: start from a full read.
    this.#digest = new Digest();
    for (const e of readDigestEntries(this.#maps)) this.#digest.add(e);
    this.#view = viewOf(this.#maps);
  }

  async apply(change: DatapathChange, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#enter();
    try {
      opts.signal?.throwIfAborted();
      const problems = checkChange(change, this.#view, this.capacity);
      if (problems.length > 0) throw new DatapathError(problems);
      // Yield once so a large apply does not look synchronous to callers, then
      // take the last chance to abort: past this point the change is committed.
      await Promise.resolve();
      opts.signal?.throwIfAborted();
      this.#commit(change);
    } finally {
      this.#busy = false;
    }
  }

  digest(): string {
    return this.#digest.toString();
  }

  async verify(opts: { signal?: AbortSignal } = {}): Promise<string> {
    return digestOfContents(await this.read(opts));
  }

  read(opts: { signal?: AbortSignal } = {}): Promise<DatapathContents> {
    this.#enter();
    try {
      opts.signal?.throwIfAborted();
      const m = this.#maps;
      return Promise.resolve({
        ipcache: [...m.ipcache].map(([prefix, identity]) => ({ prefix, identity })),
        endpoints: [...m.endpoints.values()].map(copyEndpoint),
        policies: [...m.policies].map(([endpoint, entries]) => ({
          endpoint,
          entries: [...entries.values()].map((e) => ({ ...e })),
        })),
        services: [...m.services.values()].map(copyService),
      });
    } finally {
      this.#busy = false;
    }
  }

  counts(): DatapathCounts {
    let policyEntries = 0;
    let maxPolicyEntriesPerEndpoint = 0;
    for (const pm of this.#maps.policies.values()) {
      policyEntries += pm.size;
      maxPolicyEntriesPerEndpoint = Math.max(maxPolicyEntriesPerEndpoint, pm.size);
    }
    return {
      ipcache: this.#maps.ipcache.size,
      endpoints: this.#maps.endpoints.size,
      policyEntries,
      maxPolicyEntriesPerEndpoint,
      services: this.#maps.services.size,
    };
  }

  holdsIpcachePrefix(prefix: string): boolean {
    return this.#maps.ipcache.has(prefix);
  }

  close(): Promise<void> {
    // Nothing to release; the maps (the "kernel" state) stay as they are.
    return Promise.resolve();
  }

  #enter(): void {
    if (this.#busy) throw new MeshError('INTERNAL', 'datapath calls must not overlap');
    this.#busy = true;
  }

  /**
   * Writes every entry, and keeps the digest by reading back each touched key
   * before and after its write (work proportional to the change). Checks have
   * passed, so nothing here can fail half-way.
   */
  #commit(change: DatapathChange): void {
    const m = this.#maps;
    const d = this.#digest;

    for (const p of change.ipcache.deletes) {
      this.#ipcacheBefore(p);
      m.ipcache.delete(p);
    }
    for (const u of change.ipcache.upserts) {
      const held = this.#ipcacheBefore(u.prefix);
      // A key already present keeps its string (Map#set does not replace it).
      m.ipcache.set(held ? u.prefix : this.#pooled(u.prefix), u.identity);
      d.add(ipcacheDigestEntry(u.prefix, m.ipcache.get(u.prefix)!));
    }

    for (const name of change.endpoints.deletes) {
      const ep = m.endpoints.get(name);
      if (ep === undefined) continue;
      d.remove(endpointDigestEntry(ep));
      for (const e of m.policies.get(name)?.values() ?? []) d.remove(policyDigestEntry(name, e));
      m.policies.delete(name);
      m.endpoints.delete(name);
    }
    for (const u of change.endpoints.upserts) {
      const name = endpointName(u);
      const old = m.endpoints.get(name);
      if (old !== undefined) d.remove(endpointDigestEntry(old));
      m.endpoints.set(name, copyEndpoint(u));
      if (!m.policies.has(name)) m.policies.set(name, new Map());
      d.add(endpointDigestEntry(m.endpoints.get(name)!));
    }

    for (const pm of change.policies) {
      const map = m.policies.get(pm.endpoint)!;
      for (const key of pm.deletes) {
        const k = policyKeyId(key);
        this.#policyBefore(pm.endpoint, map, k);
        map.delete(k);
      }
      for (const e of pm.upserts) {
        const k = policyKeyId(e);
        this.#policyBefore(pm.endpoint, map, k);
        map.set(k, copyPolicyRecord(e));
        d.add(policyDigestEntry(pm.endpoint, map.get(k)!));
      }
    }

    for (const n of change.services.deletes) {
      this.#serviceBefore(n);
      m.services.delete(n);
    }
    for (const s of change.services.upserts) {
      const n = serviceName(s);
      this.#serviceBefore(n);
      m.services.set(n, copyService(s));
      d.add(serviceDigestEntry(m.services.get(n)!));
    }
  }

  // Read back a key before its write: its old entry leaves the digest. True if it was held.
  #ipcacheBefore(prefix: string): boolean {
    const id = this.#maps.ipcache.get(prefix);
    if (id === undefined) return false;
    this.#digest.remove(ipcacheDigestEntry(prefix, id));
    return true;
  }

  #pooled(prefix: string): string {
    const pool = this.#prefixPool;
    if (pool === undefined) return prefix;
    const shared = pool.get(prefix);
    if (shared !== undefined) return shared;
    pool.set(prefix, prefix);
    return prefix;
  }

  #policyBefore(endpoint: string, map: Map<string, PolicyRecord>, k: string): void {
    const old = map.get(k);
    if (old !== undefined) this.#digest.remove(policyDigestEntry(endpoint, old));
  }

  #serviceBefore(name: string): void {
    const old = this.#maps.services.get(name);
    if (old !== undefined) this.#digest.remove(serviceDigestEntry(old));
  }
}

/** The checks' window on the maps (live: counts read at each call). */
function viewOf(m: EmulatedMaps): DatapathView {
  return {
    get ipcacheCount() {
      return m.ipcache.size;
    },
    get endpointCount() {
      return m.endpoints.size;
    },
    hasIpcache: (p) => m.ipcache.has(p),
    hasEndpoint: (e) => m.endpoints.has(e),
    policyCount: (e) => m.policies.get(e)?.size ?? 0,
    hasPolicy: (e, k) => m.policies.get(e)?.has(policyKeyId(k)) ?? false,
  };
}

function* readDigestEntries(m: EmulatedMaps): Generator<string> {
  for (const [p, id] of m.ipcache) yield ipcacheDigestEntry(p, id);
  for (const ep of m.endpoints.values()) yield endpointDigestEntry(ep);
  for (const [name, pm] of m.policies)
    for (const e of pm.values()) yield policyDigestEntry(name, e);
  for (const s of m.services.values()) yield serviceDigestEntry(s);
}

// Copies strip the `resource` attribution and detach stored records from the caller's objects.
function copyEndpoint(ep: EndpointRecord): EndpointRecord {
  return {
    cluster: ep.cluster,
    namespace: ep.namespace,
    name: ep.name,
    identity: ep.identity,
    ips: [...ep.ips],
    namedPorts: ep.namedPorts.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
    ingressEnforced: ep.ingressEnforced,
    egressEnforced: ep.egressEnforced,
  };
}

function copyService(s: ServiceRecord): ServiceRecord {
  return {
    namespace: s.namespace,
    name: s.name,
    type: s.type,
    ips: [...s.ips],
    ports: s.ports.map((p) => ({ ...p })),
    backends: s.backends.map((b) => ({
      cluster: b.cluster,
      ip: b.ip,
      ports: b.ports.map((p) => ({ ...p })),
    })),
  };
}
