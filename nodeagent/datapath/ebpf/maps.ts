import { Packed } from './packed.js';
import { KernelMap } from './kernel-map.js';
import { STRUCTS, decodeConfig, encodeConfig, encodeSlot } from './layout.js';
import { BPF_ANY, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, check, type Libbpf } from './libbpf.js';
import type { LoadedObject, ObjectSizes } from './object.js';

export type Copy = 0 | 1;

/**
 * map_flags of the inner policy maps: preallocated (0), as the outer maps'
 * template `struct policy_inner` in bpf/meshplane.bpf.c says (the kernel
 * refuses an inner map whose flags differ). Layout 4; layout 3 had
 * BPF_F_NO_PREALLOC.
 */
export const POLICY_INNER_FLAGS = 0;

/** One copy of the revisioned maps. */
export interface CopyMaps {
  ipcache: KernelMap;
  epIps: KernelMap;
  epInfo: KernelMap;
  /** slot -> inner policy map (array of maps) */
  policyOuter: KernelMap;
  services: KernelMap;
  /** every endpoint's port ranges (LPM trie, derived: ranges.ts) */
  ranges: KernelMap;
}

const S = STRUCTS;

/**
 * The loaded object's maps, typed, plus the per-endpoint inner policy maps
 * (two per endpoint slot, one per copy; the outer maps hold them, this class
 * holds fds to write them). Owns the inner map fds it opened.
 */
export class DatapathMaps {
  readonly copies: readonly [CopyMaps, CopyMaps];
  readonly config: KernelMap;
  readonly counters: KernelMap;
  readonly eventsFd: number;
  readonly #sync: KernelMap;
  readonly #syncInnerFd: number;
  readonly #inner = new Map<number, [KernelMap | undefined, KernelMap | undefined]>();

  constructor(
    private readonly lib: Libbpf,
    object: LoadedObject,
    private readonly sizes: ObjectSizes,
  ) {
    const copy = (c: Copy): CopyMaps => ({
      ipcache: new KernelMap(
        lib,
        `ipcache_${c}`,
        object.mapFd(`ipcache_${c}`),
        S.ipcache_key.size,
        S.ipcache_value.size,
        { batch: false, maxEntries: sizes.ipcacheEntries },
      ),
      epIps: new KernelMap(
        lib,
        `ep_ips_${c}`,
        object.mapFd(`ep_ips_${c}`),
        S.ep_ip_key.size,
        S.ep_ip_value.size,
      ),
      epInfo: new KernelMap(lib, `ep_info_${c}`, object.mapFd(`ep_info_${c}`), 4, S.ep_info.size),
      // Batch writes: the kernel waits for an RCU grace period after each
      // map-in-map update call, so one call for all new slots waits once.
      policyOuter: new KernelMap(lib, `policy_${c}`, object.mapFd(`policy_${c}`), 4, 4),
      services: new KernelMap(
        lib,
        `services_${c}`,
        object.mapFd(`services_${c}`),
        S.svc_key.size,
        S.svc_value.size,
      ),
      ranges: new KernelMap(
        lib,
        `policy_ranges_${c}`,
        object.mapFd(`policy_ranges_${c}`),
        S.policy_range_key.size,
        S.policy_value.size,
        {
          batch: false,
          maxEntries: Math.min(sizes.endpoints * sizes.policyEntriesPerEndpoint, 0xffffffff),
        },
      ),
    });
    this.copies = [copy(0), copy(1)];
    this.config = new KernelMap(lib, 'config', object.mapFd('config'), 4, S.config_value.size, {
      batch: false,
    });
    this.counters = new KernelMap(
      lib,
      'counters',
      object.mapFd('counters'),
      4,
      S.counter_value.size,
      { batch: false },
    );
    this.eventsFd = object.mapFd('events');
    this.#sync = new KernelMap(lib, 'sync', object.mapFd('sync'), 4, 4, { batch: false });
    this.#syncInnerFd = lib.mapCreate(BPF_MAP_TYPE_ARRAY, 'mp_sync', 4, 4, 1, 0);
  }

  /** The copy the programs read: the low bit of config.active. */
  activeCopy(): Copy {
    const v = this.config.lookup(encodeSlot(0));
    return v === undefined ? 0 : ((decodeConfig(v).active & 1) as Copy);
  }

  /**
   * Makes `copy` the one the programs read: every packet judged from this
   * write on is judged by it (the programs read config.active once per
   * packet). Programs already running may still be judging a packet with the
   * other copy until an RCU grace period has passed: wait for one
   * (`graceAsync`, `graceSync`) before writing the other copy. config.active
   * counts the switches (low bit = copy), so conntrack verdicts judged under
   * an earlier revision are judged again on the flow's next forward packet.
   */
  switchTo(copy: Copy): void {
    const key = encodeSlot(0);
    const cur = decodeConfig(this.config.lookup(key) ?? Buffer.alloc(S.config_value.size));
    this.config.update(key, encodeConfig({ ...cur, active: nextActive(cur.active, copy) }));
  }

  /**
   * Resolves once no program started before the call is still running: a
   * map-in-map update waits for an RCU grace period (synchronize_rcu) before
   * it returns. On a koffi worker thread (the event loop runs meanwhile).
   */
  graceAsync(): Promise<void> {
    return this.#sync.updateAsync(encodeSlot(0), encodeSlot(this.#syncInnerFd));
  }

  /** `graceAsync` on the calling thread. */
  graceSync(): void {
    this.#sync.update(encodeSlot(0), encodeSlot(this.#syncInnerFd));
  }

  /** The inner policy map of a slot in one copy, opened from the outer map on first use. */
  innerOf(copy: Copy, slot: number): KernelMap | undefined {
    let pair = this.#inner.get(slot);
    if (pair === undefined) {
      pair = [undefined, undefined];
      this.#inner.set(slot, pair);
    }
    const held = pair[copy];
    if (held !== undefined) return held;
    const id = this.copies[copy].policyOuter.lookup(encodeSlot(slot));
    if (id === undefined) return undefined;
    const fd = check(`open policy map of slot ${slot}`, this.lib.mapFdById(id.readUInt32LE(0)));
    const map = this.#innerMap(slot, copy, fd);
    pair[copy] = map;
    return map;
  }

  /** Creates two empty inner maps for a slot (not yet in the outer maps). */
  createInner(slot: number): [KernelMap, KernelMap] {
    const make = (c: Copy): KernelMap =>
      this.#innerMap(slot, c, this.lib.mapCreate(...this.#innerSpec(slot, c)));
    const a = make(0);
    try {
      return [a, make(1)];
    } catch (err) {
      a.close();
      throw err;
    }
  }

  /** One copy's empty inner map for a slot, on a koffi worker thread. */
  async createInnerOneAsync(slot: number, c: Copy): Promise<KernelMap> {
    return this.#innerMap(slot, c, await this.lib.mapCreateAsync(...this.#innerSpec(slot, c)));
  }

  /** One copy's empty inner map for a slot. */
  createInnerOne(slot: number, c: Copy): KernelMap {
    return this.#innerMap(slot, c, this.lib.mapCreate(...this.#innerSpec(slot, c)));
  }

  #innerSpec(slot: number, c: Copy): [number, string, number, number, number, number] {
    return [
      BPF_MAP_TYPE_HASH,
      `mp_pol_${slot}_${c}`,
      S.policy_key.size,
      S.policy_value.size,
      this.sizes.policyEntriesPerEndpoint,
      POLICY_INNER_FLAGS,
    ];
  }

  /**
   * Remembers inner maps created by `createInner*` as the slot's (a copy
   * left undefined keeps what is held, or is opened from its outer map on
   * first use). Only maps the outer map holds (or is about to) belong here.
   */
  adoptInner(slot: number, pair: readonly [KernelMap | undefined, KernelMap | undefined]): void {
    const held = this.#inner.get(slot);
    const next: [KernelMap | undefined, KernelMap | undefined] = [
      pair[0] ?? held?.[0],
      pair[1] ?? held?.[1],
    ];
    for (const c of [0, 1] as const) {
      const old = held?.[c];
      if (old !== undefined && old !== next[c]) old.close();
    }
    this.#inner.set(slot, next);
  }

  /** Closes the fds of a slot's inner maps (the kernel frees them once no outer map holds them). */
  releaseInner(slot: number): void {
    for (const m of this.#inner.get(slot) ?? []) m?.close();
    this.#inner.delete(slot);
  }

  setOuter(copy: Copy, slot: number, inner: KernelMap): void {
    this.copies[copy].policyOuter.update(encodeSlot(slot), encodeSlot(inner.fd));
  }

  /** Puts several inner maps into one copy's outer map in one batch call (one grace period). */
  setOuterMany(copy: Copy, slots: ReadonlyArray<readonly [number, KernelMap]>): void {
    this.copies[copy].policyOuter.updateMany(
      Packed.of(
        4,
        slots.map(([slot]) => encodeSlot(slot)),
      ),
      Packed.of(
        4,
        slots.map(([, inner]) => encodeSlot(inner.fd)),
      ),
    );
  }

  /** `setOuterMany` on a koffi worker thread (its grace period does not hold the event loop). */
  async setOuterManyAsync(
    copy: Copy,
    slots: ReadonlyArray<readonly [number, KernelMap]>,
  ): Promise<void> {
    await this.copies[copy].policyOuter.updateManyAsync(
      Packed.of(
        4,
        slots.map(([slot]) => encodeSlot(slot)),
      ),
      Packed.of(
        4,
        slots.map(([, inner]) => encodeSlot(inner.fd)),
      ),
    );
  }

  #innerMap(slot: number, c: Copy, fd: number): KernelMap {
    return new KernelMap(
      this.lib,
      `policy_${c}[${slot}]`,
      fd,
      S.policy_key.size,
      S.policy_value.size,
      { batch: true, owned: true, maxEntries: this.sizes.policyEntriesPerEndpoint },
    );
  }

  close(): void {
    for (const slot of [...this.#inner.keys()]) this.releaseInner(slot);
    this.lib.close(this.#syncInnerFd);
  }
}

export { BPF_ANY };

/** The config.active value after a switch to `copy`: the next value (mod 2^32) whose low bit is `copy`. */
export function nextActive(current: number, copy: Copy): number {
  const next = (current + 1) >>> 0;
  return (next & 1) === copy ? next : (next + 1) >>> 0;
}
