import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { Digest, MeshError } from '../../../common/index.js';
import { endpointName } from '../entries.js';
import { checkChange, type DatapathView } from '../check.js';
import { DatapathError } from '../errors.js';
import type {
  Datapath,
  DatapathCapacity,
  DatapathChange,
  DatapathContents,
  DatapathCounts,
} from '../types.js';
import { adoptState, resyncStandby } from './adopt.js';
import {
  attachPrograms,
  detachPrograms,
  findEndpointInterface,
  type Interface,
  type Netns,
} from './attach.js';
import { commitPlan, type Committed } from './commit.js';
import { checkEncodable } from './encodable.js';
import { FlowEventReader, readCounters, type CounterSample, type FlowEvent } from './events.js';
import { STRUCTS, decodeConfig, encodeConfig, encodeSlot } from './layout.js';
import { Libbpf } from './libbpf.js';
import { DatapathMaps, type Copy } from './maps.js';
import { DEFAULT_OBJECT_PATH, type LoadedObject } from './object.js';
import { openPins } from './pins.js';
import { emptyHeldPolicy, emptyMirror, planChange } from './plan.js';
import { writeKeyIfEncodable } from './policy-key-id.js';
import { PolicyMapDigester, noDigests, type KernelDigests } from './kernel-digest.js';
import { KernelMap } from './kernel-map.js';
import {
  readBack,
  readIpcacheAsync,
  readWrittenPolicy,
  readsWholeMap,
  type HeldState,
  type WrittenPolicy,
} from './read-back.js';
import { commitRanges, rangeCapacityProblems } from './ranges.js';
import { readCopyAsync, verifyCopy } from './read.js';

/** Policy-table entries inserted per turn of the event loop after a background replay. */
const MATERIALIZE_SLICE = 16_384;

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
 * apply() writes the standby copy of the revisioned maps, switches the
 * programs to it, then reads the changed entries back from the now active
 * copy to update the digest, and returns: every packet judged from then on
 * is judged by the whole revision, and the digest is what the kernel holds.
 * The same writes on the other copy follow once no program still judges a
 * packet with it (an RCU grace period, waited for on a worker thread, after
 * the ACK) — see syncStandby.
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
  #state: HeldState = { mirror: emptyMirror(), digest: new Digest(), free: [] };
  #busy = false;
  #closed = false;
  /** the last revision's writes still owed to the standby copy (see syncStandby) */
  #replay: Pick<Committed, 'replay' | 'replayAsync'> | undefined;
  #replayTimer: NodeJS.Immediate | undefined;
  /** the replay running in the background, its writes on worker threads (see #replayInBackground) */
  #replaying: Promise<void> | undefined;
  /** the RCU grace period after the last switch while it runs: the standby copy may still judge packets */
  #grace: Promise<void> | undefined;
  /** set when a replay failed: the standby copy must be copied from the active one before the next write */
  #standbyStale: unknown;
  #events: FlowEventReader | undefined;
  /** reads a policy map written whole back as its in-kernel digest (see readWrittenPolicy) */
  readonly #digester: PolicyMapDigester;
  readonly #kernelDigests: KernelDigests = { write: noDigests(), verify: noDigests() };
  /** the apply, verification or read in progress (kernel calls on worker threads): close() waits for it */
  #working: Promise<unknown> | undefined;

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
    this.#digester = new PolicyMapDigester(lib, object.policyDigestFd);
  }

  static async open(opts: EbpfDatapathOptions): Promise<EbpfDatapath> {
    const lib = opts.libbpf ?? new Libbpf();
    // A missing bpf/libmeshplane-maps.so fails here, not at the first large write or verification.
    lib.loadMapOps();
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
      dp.#state = adoptState(maps, sizes.endpoints);
      return dp;
    } catch (err) {
      maps?.close();
      opened.object.close();
      throw err;
    }
  }

  apply(change: DatapathChange, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#exclusive(opts.signal, async () => {
      let created: { copy: Copy; maps: Map<number, Promise<KernelMap>> } | undefined;
      try {
        // New endpoints' standby inner maps are created on worker threads while the change is checked and planned.
        created = this.#createInnerEarly(change);
        const problems = [
          ...checkChange(change, this.#view(), this.capacity),
          ...checkEncodable(change),
        ];
        if (problems.length > 0) throw new DatapathError(problems);

        await Promise.resolve();
        opts.signal?.throwIfAborted();
        await this.#commit(change, created);
      } finally {
        // Maps created early for slots the plan did not use (or for a refused change).
        for (const early of created?.maps.values() ?? [])
          early.then(
            (m) => m.close(),
            () => undefined,
          );
      }
    });
  }

  /** Starts creating the standby copy's inner maps for the slots the change's new endpoints will get (as planChange gives them). */
  #createInnerEarly(change: DatapathChange): {
    copy: Copy;
    maps: Map<number, Promise<KernelMap>>;
  } {
    const out = new Map<number, Promise<KernelMap>>();
    const free = [...this.#state.free];
    const seen = new Set<string>();
    const standby = (1 - this.maps.activeCopy()) as Copy;
    for (const u of change.endpoints.upserts) {
      const name = endpointName(u);
      if (this.#state.mirror.endpoints.has(name) || seen.has(name)) continue;
      seen.add(name);
      const slot = free.pop();
      if (slot === undefined) break;
      const early = this.maps.createInnerOneAsync(slot, standby);
      early.catch(() => undefined); // awaited by the commit, or dropped
      out.set(slot, early);
    }
    return { copy: standby, maps: out };
  }

  digest(): string {
    return this.#state.digest.toString();
  }

  /**
   * The digest of what the active copy holds, read now. The policy maps the
   * agent holds are digested in the kernel (read.ts verifyCopy): one whose
   * digest differs from the agent's, like every other map, is read whole.
   */
  verify(opts: { signal?: AbortSignal } = {}): Promise<string> {
    return this.#exclusive(opts.signal, async () => {
      const m = this.#state.mirror;
      const { digest, policyMaps } = await verifyCopy(
        this.maps,
        this.maps.activeCopy(),
        m,
        this.#digester,
      );
      const v = this.#kernelDigests.verify;
      v.matched += policyMaps.matched;
      v.mismatched += policyMaps.mismatched;
      v.refused += policyMaps.refused;
      return digest;
    });
  }

  async read(opts: { signal?: AbortSignal } = {}): Promise<DatapathContents> {
    return (
      await this.#exclusive(opts.signal, () => readCopyAsync(this.maps, this.maps.activeCopy()))
    ).contents;
  }

  /**
   * Runs `work` as the datapath's one call in progress (calls must not
   * overlap); close() waits for it, since its kernel calls run on worker
   * threads. A replay running in the background finishes first (every call
   * sees both copies settled). Afterwards, a replay whose grace period ended
   * meanwhile (the replay skips a busy datapath) is scheduled.
   */
  async #exclusive<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    this.#enter();
    try {
      if (this.#replaying !== undefined) await this.#replaying;
      signal?.throwIfAborted();
      const working = work();
      this.#working = working;
      return await working;
    } finally {
      this.#working = undefined;
      this.#busy = false;
      if (this.#replay !== undefined && this.#grace === undefined && !this.#closed)
        this.#scheduleReplay();
    }
  }

  /**
   * How policy maps were read since open, by the read-back of a map written
   * whole (`write`) and by verify() (`verify`, every map the agent holds):
   * by an in-kernel digest equal to what the agent wrote, or dumped after
   * it differed (an entry the agent did not write — someone else writes the
   * map) or was refused.
   */
  kernelDigests(): KernelDigests {
    return { write: { ...this.#kernelDigests.write }, verify: { ...this.#kernelDigests.verify } };
  }

  counts(): DatapathCounts {
    let policyEntries = 0;
    let maxPolicyEntriesPerEndpoint = 0;
    for (const pm of this.#state.mirror.policies.values()) {
      policyEntries += pm.table.size;
      maxPolicyEntriesPerEndpoint = Math.max(maxPolicyEntriesPerEndpoint, pm.table.size);
    }
    return {
      ipcache: this.#state.mirror.ipcache.size,
      endpoints: this.#state.mirror.endpoints.size,
      policyEntries,
      maxPolicyEntriesPerEndpoint,
      services: this.#state.mirror.services.size,
    };
  }

  holdsIpcachePrefix(prefix: string): boolean {
    return this.#state.mirror.ipcache.has(prefix);
  }

  /** The local endpoints held now (cluster/namespace/name and addresses), e.g. to attach programs for them. */
  localEndpoints(): { endpoint: string; ips: string[] }[] {
    return [...this.#state.mirror.endpoints].map(([endpoint, e]) => ({
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
    const held = this.#state.mirror.endpoints.get(endpoint);
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
    return this.#state.mirror.endpoints.get(endpoint)?.slot;
  }

  /** The endpoint (cluster/namespace/name) in a slot, for decoding events. */
  endpointInSlot(slot: number): string | undefined {
    for (const [name, e] of this.#state.mirror.endpoints) if (e.slot === slot) return name;
    return undefined;
  }

  /**
   * Brings the standby copy up to date with the active one now. apply()
   * returns once the active copy holds the revision and the digest is read
   * back; the same writes on the other copy follow once the grace period
   * after the switch has passed (no program still judges a packet with that
   * copy), on the next turn of the event loop after it — after the agent's
   * ACK — or at the latest when the next apply or close() starts (they
   * await the grace period first). In the agent the replay runs in the
   * background with its writes on worker threads (#replayInBackground);
   * called directly before that started, this runs it on this thread, and
   * waits for a grace period still running here too — for benchmarks and
   * tests that time that part on its own. Not while a background replay
   * runs (`standbySynced()` waits for it). Idempotent.
   */
  syncStandby(): void {
    if (this.#replaying !== undefined)
      throw new MeshError('INTERNAL', 'the standby copy is being replayed in the background');
    if (this.#replayTimer !== undefined) clearImmediate(this.#replayTimer);
    this.#replayTimer = undefined;
    const replay = this.#replay;
    this.#replay = undefined;
    if (replay === undefined) return;
    try {
      if (this.#grace !== undefined) this.maps.graceSync();
      replay.replay();
    } catch (err) {
      // A refused wait too: the next apply copies the active copy onto it after a grace period.
      this.#standbyStale = err;
    } finally {
      this.#grace = undefined;
    }
    this.#materializeTables();
  }

  /**
   * Resolves once the standby copy holds the last revision (or is marked
   * stale): the replay done in the background, as the agent has it done
   * after its ACK — started now if its turn had not come yet.
   */
  async standbySynced(): Promise<void> {
    if (this.#working !== undefined) await this.#working.catch(() => undefined);
    if (this.#replaying === undefined) {
      if (this.#grace !== undefined) await this.#grace.catch(() => undefined);
      if (this.#grace === undefined && !this.#busy) this.#startReplay();
    }
    if (this.#replaying !== undefined) await this.#replaying;
    // A grace period the kernel refused to wait for off this thread: here.
    this.syncStandby();
  }

  /** The mirror's tables of policy maps read back whole are built after the ACK, with the replay. */
  #materializeTables(): void {
    for (const held of this.#state.mirror.policies.values()) held.table.materialize();
  }

  async close(): Promise<void> {
    if (this.#working !== undefined) await this.#working.catch(() => undefined);
    if (this.#replaying !== undefined) await this.#replaying;
    // The grace period's wait holds the sync map's fd on a worker thread.
    if (this.#grace !== undefined) await this.#grace.catch(() => undefined);
    if (!this.#closed) {
      this.syncStandby();
      this.#closed = true;
      this.#events?.close();
      this.maps.close();
      this.object.close();
    }
  }

  #enter(): void {
    if (this.#closed) throw new MeshError('INTERNAL', 'datapath is closed');
    if (this.#busy) throw new MeshError('INTERNAL', 'datapath calls must not overlap');
    this.#busy = true;
  }

  #view(): DatapathView {
    const m = this.#state.mirror;
    const key = Buffer.alloc(STRUCTS.policy_key.size);
    return {
      ipcacheCount: m.ipcache.size,
      endpointCount: m.endpoints.size,
      hasIpcache: (p) => m.ipcache.has(p),
      hasEndpoint: (e) => m.endpoints.has(e),
      policyCount: (e) => m.policies.get(e)?.table.size ?? 0,
      hasPolicy: (e, k) => {
        const held = m.policies.get(e);
        if (held === undefined) return false;
        return writeKeyIfEncodable(key, k) && held.table.has(key, 0);
      },
    };
  }

  async #commit(
    change: DatapathChange,
    created: { copy: Copy; maps: Map<number, Promise<KernelMap>> } | undefined,
  ): Promise<void> {
    // The last switch's grace period, if it is still running, off the event loop (syncStandby would block it).
    if (this.#grace !== undefined) await this.#grace.catch(() => undefined);
    // A replay this apply came before (its turn of the event loop not come yet): here, now.
    this.syncStandby();
    if (this.#standbyStale !== undefined) this.#resyncStandby();
    const plan = planChange(change, this.#state.mirror, this.#state.free);
    const problems = rangeCapacityProblems(plan.ranges, this.capacity.policyEntriesPerEndpoint);

    if (problems.length > 0) throw new DatapathError(problems);
    const mirror = this.#state.mirror;
    const written = new Map<number, WrittenPolicy>();
    const committed = await commitPlan(this.maps, plan, {
      ...(created ? { created: created.maps, createdCopy: created.copy } : {}),
      afterWrite: (slot, ops, inner, copy) => {
        const held = mirror.policies.get(ops.endpoint);
        if (!readsWholeMap(ops, held)) return undefined;
        const from = held ?? emptyHeldPolicy(ops.endpoint);
        return readWrittenPolicy({ slot, copy, inner }, ops, from, this.#digester).then((w) => {
          written.set(slot, w);
          this.#kernelDigests.write[w.result] += 1;
        });
      },
    });
    this.#replay = committed;
    const grace = committed.grace;
    this.#grace = grace;

    const ipcacheValues = await readIpcacheAsync(this.maps, change, committed.active);
    readBack(this.maps, change, plan, committed.active, this.#state, written, ipcacheValues);
    commitRanges(this.#state.mirror.ranges, plan.ranges);

    // After the grace period and after the caller's continuation (the agent sends its ACK there).
    grace.then(
      () => {
        if (this.#grace !== grace) return; // synced already (next apply, close)
        this.#grace = undefined;
        this.#scheduleReplay();
      },
      () => undefined, // syncStandby waits on this thread (or marks the copy stale)
    );
  }

  /** The replay on the standby copy, on a next turn of the event loop when the datapath is idle. */
  #scheduleReplay(): void {
    if (this.#replayTimer !== undefined || this.#replaying !== undefined) return;
    this.#replayTimer = setImmediate(() => {
      this.#replayTimer = undefined;
      if (!this.#busy && !this.#closed) this.#startReplay();
    });
  }

  /** Starts the replay owed, if any, in the background (its timer, if set, is dropped). */
  #startReplay(): void {
    if (this.#replayTimer !== undefined) clearImmediate(this.#replayTimer);
    this.#replayTimer = undefined;
    if (this.#replay === undefined || this.#replaying !== undefined) return;
    this.#replaying = this.#replayInBackground().finally(() => (this.#replaying = undefined));
  }

  /**
   * The replay with its large writes on worker threads (a 100,000-entry
   * policy map, a full sync's ipcache of one call per prefix: 60–180 ms that
   * held the event loop after the ACK). The next apply, verification, read
   * or close waits for it; a failure marks the copy stale as syncStandby
   * does. Never rejects.
   */
  async #replayInBackground(): Promise<void> {
    const replay = this.#replay;
    this.#replay = undefined;
    if (replay === undefined) return;
    try {
      await replay.replayAsync();
    } catch (err) {
      this.#standbyStale = err;
    }
    // The tables too, a slice per turn of the event loop (100,000 entries held it ~40 ms).
    for (const held of this.#state.mirror.policies.values())
      while (!held.table.materialize(MATERIALIZE_SLICE)) await setImmediatePromise();
  }

  /** Copies the active copy onto the standby one after a failed replay; a failure refuses the apply. */
  #resyncStandby(): void {
    const active = this.maps.activeCopy();
    const used = new Set([...this.#state.mirror.endpoints.values()].map((e) => e.slot));
    try {
      this.maps.graceSync();
      resyncStandby(this.maps, active, (1 - active) as 0 | 1, used, this.capacity.endpoints);
      this.#standbyStale = undefined;
    } catch (err) {
      throw new DatapathError(
        [
          {
            code: 'INTERNAL',
            message: `the standby copy could not be brought up to date (after ${String(this.#standbyStale)}): ${(err as Error).message}; the active copy keeps the last revision`,
            resourceNames: [],
          },
        ],
        { cause: err },
      );
    }
  }
}
