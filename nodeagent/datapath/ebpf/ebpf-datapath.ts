import { Digest, MeshError } from '../../../common/index.js';
import { checkChange, type DatapathView } from '../check.js';
import {
  digestOfContents,
  endpointDigestEntry,
  endpointName,
  ipcacheDigestEntry,
  policyDigestEntry,
  policyKeyId,
  serviceDigestEntry,
  serviceName,
} from '../entries.js';
import { DatapathError, type Rejection } from '../errors.js';
import type {
  Datapath,
  DatapathCapacity,
  DatapathChange,
  DatapathContents,
  DatapathCounts,
} from '../types.js';
import {
  attachPrograms,
  detachPrograms,
  findEndpointInterface,
  type Interface,
  type Netns,
} from './attach.js';
import { FlowEventReader, readCounters, type CounterSample, type FlowEvent } from './events.js';
import type { KernelMap } from './kernel-map.js';
import {
  EP_META_MAX,
  SVC_DATA_MAX,
  SVC_NAME_MAX,
  decodeConfig,
  decodeEpInfo,
  encodeConfig,
  decodeIpcacheValue,
  decodePolicy,
  decodeServiceValue,
  encodeEpInfo,
  encodeIpcacheKey,
  encodePolicyKey,
  encodeServiceKey,
  encodeSlot,
  endpointMetaSize,
  serviceValueSize,
} from './layout.js';
import { Libbpf } from './libbpf.js';
import { DatapathMaps, type Copy } from './maps.js';
import { DEFAULT_OBJECT_PATH, type LoadedObject } from './object.js';
import { openPins } from './pins.js';
import { TABLES, emptyMirror, planChange, type Mirror, type Plan, type TableOps } from './plan.js';
import { readCopy } from './read.js';

export const EBPF_DEFAULT_CAPACITY = {
  ipcacheEntries: 524288,
  endpoints: 1024,
  policyEntriesPerEndpoint: 16384,
} as const;

export interface EbpfDatapathOptions {
  /** this node's pin directory, e.g. /sys/fs/bpf/meshplane/<run-id>/<node> (see defaultPinDir) */
  pinDir: string;
  ipcacheEntries?: number;
  endpoints?: number;
  policyEntriesPerEndpoint?: number;
  /** the compiled bpf/meshplane.bpf.o by default */
  objectPath?: string;
  /** one per process; created when not given */
  libbpf?: Libbpf;
  signal?: AbortSignal;
}

/**
 * The kernel datapath: the maps of bpf/meshplane.bpf.o, pinned in a pin dir.
 *
 * apply() writes the standby copy of the revisioned maps, flips the active
 * copy (waiting for running programs), replays the change on the other copy,
 * then reads the changed entries back from the kernel to update the digest.
 * open() adopts pins that exist (as after an agent restart); close() releases
 * file descriptors and leaves maps and attached programs enforcing.
 */
export class EbpfDatapath implements Datapath {
  readonly capacity: DatapathCapacity;
  /** the loaded programs (for attaching; see attachEndpoint) */
  readonly object: LoadedObject;
  readonly maps: DatapathMaps;
  readonly lib: Libbpf;
  readonly pinDir: string;
  /** true when open() found no pins of this layout and created them */
  readonly created: boolean;
  #mirror: Mirror = emptyMirror();
  #free: number[] = [];
  #digest = new Digest();
  #busy = false;
  #closed = false;
  #events: FlowEventReader | undefined;

  private constructor(
    lib: Libbpf,
    object: LoadedObject,
    maps: DatapathMaps,
    capacity: DatapathCapacity,
    pinDir: string,
    created: boolean,
  ) {
    this.lib = lib;
    this.object = object;
    this.maps = maps;
    this.capacity = capacity;
    this.pinDir = pinDir;
    this.created = created;
  }

  static async open(opts: EbpfDatapathOptions): Promise<EbpfDatapath> {
    const lib = opts.libbpf ?? new Libbpf();
    const sizes = {
      ipcacheEntries: opts.ipcacheEntries ?? EBPF_DEFAULT_CAPACITY.ipcacheEntries,
      endpoints: opts.endpoints ?? EBPF_DEFAULT_CAPACITY.endpoints,
      policyEntriesPerEndpoint:
        opts.policyEntriesPerEndpoint ?? EBPF_DEFAULT_CAPACITY.policyEntriesPerEndpoint,
    };
    const opened = await openPins(lib, {
      pinDir: opts.pinDir,
      objectPath: opts.objectPath ?? DEFAULT_OBJECT_PATH,
      sizes,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let maps: DatapathMaps | undefined;
    try {
      maps = new DatapathMaps(lib, opened.object, sizes);
      const dp = new EbpfDatapath(
        lib,
        opened.object,
        maps,
        { backend: 'ebpf', ...sizes },
        opts.pinDir,
        opened.created,
      );
      dp.#adopt();
      return dp;
    } catch (err) {
      maps?.close();
      opened.object.close();
      throw err;
    }
  }

  /** Takes what the active copy holds as the mirror; makes the standby copy equal to it. */
  #adopt(): void {
    const active = this.maps.activeCopy();
    const { contents, slots } = readCopy(this.maps, active);
    const m = emptyMirror();
    for (const e of contents.ipcache) m.ipcache.set(e.prefix, e.identity);
    for (const ep of contents.endpoints) {
      const name = endpointName(ep);
      m.endpoints.set(name, { record: ep, slot: slots.get(name)! });
    }
    for (const p of contents.policies)
      m.policies.set(p.endpoint, new Map(p.entries.map((e) => [policyKeyId(e), e])));
    for (const s of contents.services) m.services.set(serviceName(s), s);
    this.#mirror = m;
    this.#digest = Digest.of(entriesOfMirror(m));
    const used = new Set(slots.values());
    this.#free = [];
    for (let s = this.capacity.endpoints - 1; s >= 0; s--) if (!used.has(s)) this.#free.push(s);
    const standby = (1 - active) as Copy;
    if (digestOfContents(readCopy(this.maps, standby).contents) !== this.#digest.toString()) {
      this.#resyncStandby(active, standby, slots);
    }
  }

  /** After a crash between the two copies' writes: copy the active copy onto the standby one. */
  #resyncStandby(active: Copy, standby: Copy, slots: Map<string, number>): void {
    const from = this.maps.copies[active];
    const to = this.maps.copies[standby];
    for (const t of ['ipcache', 'epIps', 'services'] as const) {
      to[t].deleteMany(to[t].keys());
      const entries = from[t].dump();
      to[t].updateMany(
        entries.map(([k]) => k),
        entries.map(([, v]) => v),
      );
    }
    const used = new Set(slots.values());
    for (let slot = 0; slot < this.capacity.endpoints; slot++) {
      const info = from.epInfo.lookup(encodeSlot(slot)) ?? encodeEpInfo(undefined);
      to.epInfo.update(encodeSlot(slot), info);
      if (!used.has(slot)) {
        to.policyOuter.delete(encodeSlot(slot));
        continue;
      }
      let inner = this.maps.innerOf(standby, slot);
      if (inner === undefined) {
        const [a, b] = this.maps.createInner(slot);
        inner = standby === 0 ? a : b;
        (standby === 0 ? b : a).close();
        this.maps.setOuter(standby, slot, inner);
        inner.close();
        inner = this.maps.innerOf(standby, slot)!;
      }
      inner.deleteMany(inner.keys());
      const entries = this.maps.innerOf(active, slot)?.dump() ?? [];
      inner.updateMany(
        entries.map(([k]) => k),
        entries.map(([, v]) => v),
      );
    }
  }

  async apply(change: DatapathChange, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#enter();
    try {
      opts.signal?.throwIfAborted();
      const problems = [
        ...checkChange(change, this.#view(), this.capacity),
        ...checkEncodable(change),
      ];
      if (problems.length > 0) throw new DatapathError(problems);
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
      return Promise.resolve(readCopy(this.maps, this.maps.activeCopy()).contents);
    } finally {
      this.#busy = false;
    }
  }

  counts(): DatapathCounts {
    let policyEntries = 0;
    let maxPolicyEntriesPerEndpoint = 0;
    for (const pm of this.#mirror.policies.values()) {
      policyEntries += pm.size;
      maxPolicyEntriesPerEndpoint = Math.max(maxPolicyEntriesPerEndpoint, pm.size);
    }
    return {
      ipcache: this.#mirror.ipcache.size,
      endpoints: this.#mirror.endpoints.size,
      policyEntries,
      maxPolicyEntriesPerEndpoint,
      services: this.#mirror.services.size,
    };
  }

  /** The local endpoints held now (cluster/namespace/name and addresses), e.g. to attach programs for them. */
  localEndpoints(): { endpoint: string; ips: string[] }[] {
    return [...this.#mirror.endpoints].map(([endpoint, e]) => ({
      endpoint,
      ips: [...e.record.ips],
    }));
  }

  /**
   * Attaches the programs on a local endpoint's interface, found from the
   * route to its address in `netns` (the node's namespace; the agent's own by
   * default). Returns the interface, or undefined while it does not exist
   * yet (the maps are programmed either way). Idempotent: attaching again
   * replaces meshplane's filters with this datapath's programs.
   */
  async attachEndpoint(
    endpoint: string,
    opts: { netns?: Netns; signal?: AbortSignal } = {},
  ): Promise<Interface | undefined> {
    const held = this.#mirror.endpoints.get(endpoint);
    if (held === undefined) throw new MeshError('NOT_FOUND', `no local endpoint ${endpoint}`);
    for (const ip of held.record.ips) {
      const itf = await findEndpointInterface(ip, opts);
      if (itf === undefined) continue;
      attachPrograms(this.lib, this.object, itf.ifindex, opts.netns);
      return itf;
    }
    return undefined;
  }

  /** Attaches the programs on an interface (by ifindex in `netns`), replacing meshplane's filters there. */
  attachInterface(ifindex: number, opts: { netns?: Netns } = {}): void {
    attachPrograms(this.lib, this.object, ifindex, opts.netns);
  }

  /** Removes meshplane's filters from an interface (by ifindex in `netns`). */
  detachInterface(ifindex: number, opts: { netns?: Netns } = {}): void {
    detachPrograms(this.lib, ifindex, opts.netns);
  }

  /**
   * Flow verdicts and drops from the programs, decoded, from now on until
   * `signal` aborts or the datapath closes. Any number of subscribers share
   * one ring buffer reader (polled every 100 ms; see FlowEventReader).
   */
  events(opts: { signal?: AbortSignal } = {}): AsyncGenerator<FlowEvent> {
    if (this.#closed) throw new MeshError('INTERNAL', 'datapath is closed');
    this.#events ??= new FlowEventReader(this.lib, this.maps.eventsFd, (slot) =>
      this.endpointInSlot(slot),
    );
    return this.#events.events(opts);
  }

  /** Packets and bytes by direction and reason since the maps were created, summed over CPUs (non-zero only). */
  counters(): CounterSample[] {
    return readCounters(this.lib, this.maps.counters.fd);
  }

  /** Sets the per-CPU event rate limit (events/s and burst; 0 turns events off). */
  setEventRate(perSec: number, burst: number): void {
    const key = encodeSlot(0);
    const cur = decodeConfig(this.maps.config.lookup(key)!);
    this.maps.config.update(
      key,
      encodeConfig({ ...cur, eventsPerSec: perSec, eventsBurst: burst }),
    );
  }

  /** The kernel slot of an endpoint (cluster/namespace/name), as events report it. */
  slotOf(endpoint: string): number | undefined {
    return this.#mirror.endpoints.get(endpoint)?.slot;
  }

  /** The endpoint (cluster/namespace/name) in a slot, for decoding events. */
  endpointInSlot(slot: number): string | undefined {
    for (const [name, e] of this.#mirror.endpoints) if (e.slot === slot) return name;
    return undefined;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#events?.close();
      this.maps.close();
      this.object.close();
    }
    return Promise.resolve();
  }

  #enter(): void {
    if (this.#closed) throw new MeshError('INTERNAL', 'datapath is closed');
    if (this.#busy) throw new MeshError('INTERNAL', 'datapath calls must not overlap');
    this.#busy = true;
  }

  #view(): DatapathView {
    const m = this.#mirror;
    return {
      ipcacheCount: m.ipcache.size,
      endpointCount: m.endpoints.size,
      hasIpcache: (p) => m.ipcache.has(p),
      hasEndpoint: (e) => m.endpoints.has(e),
      policyCount: (e) => m.policies.get(e)?.size ?? 0,
      hasPolicy: (e, k) => m.policies.get(e)?.has(k) ?? false,
    };
  }

  #commit(change: DatapathChange): void {
    const plan = planChange(change, this.#mirror, this.#free);
    const created = new Map<number, [KernelMap, KernelMap]>();
    try {
      for (const slot of plan.newSlots.values()) created.set(slot, this.maps.createInner(slot));
    } catch (err) {
      for (const pair of created.values()) for (const m of pair) m.close();
      throw err;
    }
    const active = this.maps.activeCopy();
    const standby = (1 - active) as Copy;
    try {
      this.#write(standby, plan, created, 'forward');
    } catch (err) {
      this.#rollback([standby], plan, created, err);
    }
    this.maps.flip(standby);
    try {
      this.#write(active, plan, created, 'forward');
    } catch (err) {
      this.maps.flip(active);
      this.#rollback([active, standby], plan, created, err);
    }
    for (const [slot, pair] of created) this.maps.adoptInner(slot, pair);
    this.#readBack(change, plan, standby);
  }

  #rollback(
    copies: Copy[],
    plan: Plan,
    created: Map<number, [KernelMap, KernelMap]>,
    cause: unknown,
  ): never {
    try {
      for (const c of copies) this.#write(c, plan, created, 'undo');
    } finally {
      for (const pair of created.values()) for (const m of pair) m.close();
    }
    throw new DatapathError(
      [
        {
          code: 'INTERNAL',
          message: `kernel map write failed, change rolled back: ${(cause as Error).message}`,
          resourceNames: [],
        },
      ],
      { cause },
    );
  }

  /** One copy's writes of a plan (or of its undo). */
  #write(
    copy: Copy,
    plan: Plan,
    created: Map<number, [KernelMap, KernelMap]>,
    dir: 'forward' | 'undo',
  ): void {
    const maps = this.maps.copies[copy];
    const apply = (m: KernelMap, o: TableOps): void => {
      m.deleteMany(o.deletes);
      m.updateMany(o.keys, o.values);
    };
    for (const t of TABLES) apply(maps[t], plan[dir][t]);
    for (const [slot, pair] of created) {
      if (dir === 'forward') this.maps.setOuter(copy, slot, pair[copy]);
      else maps.policyOuter.delete(encodeSlot(slot));
    }
    for (const [slot, ops] of plan.policy) {
      const inner = created.get(slot)?.[copy] ?? this.maps.innerOf(copy, slot);
      if (inner !== undefined) apply(inner, ops[dir]);
    }
    // Deleted endpoints lose their policy maps; the undo puts the held ones back.
    for (const slot of plan.deletedSlots.values()) {
      if (dir === 'forward') maps.policyOuter.delete(encodeSlot(slot));
      else {
        const inner = this.maps.innerOf(copy, slot);
        if (inner !== undefined) this.maps.setOuter(copy, slot, inner);
      }
    }
  }

  /** Updates the mirror and digest from the changed entries as the kernel now holds them. */
  #readBack(change: DatapathChange, plan: Plan, copy: Copy): void {
    const m = this.#mirror;
    const d = this.#digest;
    const k = this.maps.copies[copy];
    for (const p of change.ipcache.deletes) {
      const id = m.ipcache.get(p);
      if (id === undefined) continue;
      d.remove(ipcacheDigestEntry(p, id));
      m.ipcache.delete(p);
    }
    for (const u of change.ipcache.upserts) {
      const old = m.ipcache.get(u.prefix);
      if (old !== undefined) d.remove(ipcacheDigestEntry(u.prefix, old));
      const v = k.ipcache.lookup(encodeIpcacheKey(u.prefix));
      if (v === undefined) m.ipcache.delete(u.prefix);
      else {
        m.ipcache.set(u.prefix, decodeIpcacheValue(v));
        d.add(ipcacheDigestEntry(u.prefix, decodeIpcacheValue(v)));
      }
    }
    for (const [name, slot] of plan.deletedSlots) {
      const held = m.endpoints.get(name)!;
      d.remove(endpointDigestEntry(held.record));
      for (const e of m.policies.get(name)?.values() ?? []) d.remove(policyDigestEntry(name, e));
      m.policies.delete(name);
      m.endpoints.delete(name);
      this.maps.releaseInner(slot);
    }
    for (const u of change.endpoints.upserts) {
      const name = endpointName(u);
      const old = m.endpoints.get(name);
      if (old !== undefined) d.remove(endpointDigestEntry(old.record));
      const slot = old?.slot ?? plan.newSlots.get(name)!;
      const ep = decodeEpInfo(k.epInfo.lookup(encodeSlot(slot))!)!;
      m.endpoints.set(name, { record: ep, slot });
      if (!m.policies.has(name)) m.policies.set(name, new Map());
      d.add(endpointDigestEntry(ep));
    }
    for (const pm of change.policies) {
      const held = m.policies.get(pm.endpoint)!;
      const inner = this.maps.innerOf(copy, m.endpoints.get(pm.endpoint)!.slot)!;
      for (const key of pm.deletes) {
        const id = policyKeyId(key);
        const old = held.get(id);
        if (old === undefined) continue;
        d.remove(policyDigestEntry(pm.endpoint, old));
        held.delete(id);
      }
      // A large change reads the whole map in batches (a few syscalls) rather than key by key;
      // still proportional to the change, as it is at least a quarter of the map.
      const bulk =
        pm.upserts.length >= 256 && pm.upserts.length * 4 >= held.size + pm.upserts.length
          ? new Map(inner.dump().map(([k, v]) => [k.toString('latin1'), v]))
          : undefined;
      for (const e of pm.upserts) {
        const id = policyKeyId(e);
        const old = held.get(id);
        if (old !== undefined) d.remove(policyDigestEntry(pm.endpoint, old));
        const key = encodePolicyKey(e);
        const v = bulk === undefined ? inner.lookup(key) : bulk.get(key.toString('latin1'));
        if (v === undefined) held.delete(id);
        else {
          const got = decodePolicy(key, v);
          held.set(id, got);
          d.add(policyDigestEntry(pm.endpoint, got));
        }
      }
    }
    for (const n of change.services.deletes) {
      const old = m.services.get(n);
      if (old === undefined) continue;
      d.remove(serviceDigestEntry(old));
      m.services.delete(n);
    }
    for (const s of change.services.upserts) {
      const n = serviceName(s);
      const old = m.services.get(n);
      if (old !== undefined) d.remove(serviceDigestEntry(old));
      const v = k.services.lookup(encodeServiceKey(n));
      if (v === undefined) m.services.delete(n);
      else {
        const got = decodeServiceValue(v);
        m.services.set(n, got);
        d.add(serviceDigestEntry(got));
      }
    }
    const taken = new Set(plan.newSlots.values());
    this.#free = this.#free.filter((s) => !taken.has(s));
    for (const slot of plan.deletedSlots.values()) this.#free.push(slot);
  }
}

function* entriesOfMirror(m: Mirror): Generator<string> {
  for (const [p, id] of m.ipcache) yield ipcacheDigestEntry(p, id);
  for (const e of m.endpoints.values()) yield endpointDigestEntry(e.record);
  for (const [name, pm] of m.policies)
    for (const e of pm.values()) yield policyDigestEntry(name, e);
  for (const s of m.services.values()) yield serviceDigestEntry(s);
}

/** Records too large for their fixed-size kernel values. */
function checkEncodable(change: DatapathChange): Rejection[] {
  const out: Rejection[] = [];
  for (const ep of change.endpoints.upserts) {
    const size = endpointMetaSize(ep);
    if (size > EP_META_MAX) {
      out.push({
        code: 'VALIDATION',
        message: `endpoint ${endpointName(ep)}: its names, addresses and ports take ${size} bytes, the kernel record holds ${EP_META_MAX}`,
        resourceNames: [ep.resource],
      });
    }
  }
  for (const s of change.services.upserts) {
    const name = serviceName(s);
    const size = serviceValueSize(s);
    if (Buffer.byteLength(name) >= SVC_NAME_MAX || size > SVC_DATA_MAX) {
      out.push({
        code: 'VALIDATION',
        message: `service ${name}: record of ${size} bytes (name ${Buffer.byteLength(name)}) exceeds the kernel record (${SVC_DATA_MAX}, name < ${SVC_NAME_MAX})`,
        resourceNames: [s.resource],
      });
    }
  }
  return out;
}
