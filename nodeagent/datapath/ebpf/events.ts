import { readFileSync } from 'node:fs';
import { AsyncQueue, MeshError } from '../../../common/index.js';
import { STRUCTS, decodeAddress } from './layout.js';
import type { Libbpf, Pointer } from './libbpf.js';

/** Why the programs forwarded or dropped a packet (bpf/meshplane.h enum meshplane_reason). */
export const REASONS = {
  1: 'policy-allowed',
  2: 'conntrack-reply',
  3: 'not-enforced',
  4: 'audit',
  5: 'policy-denied',
  6: 'default-denied',
  7: 'not-an-endpoint',
  8: 'not-ip',
  9: 'conntrack-related',
  15: 'event-rate-limited',
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS] | 'unknown';
const REASON_MAX = 16;

export type FlowDirection = 'ingress' | 'egress';

function reasonName(n: number): Reason {
  return (REASONS as Record<number, Reason>)[n] ?? 'unknown';
}

/** What a reason means for the packet. */
export function reasonVerdict(reason: Reason): 'forwarded' | 'dropped' | 'none' {
  if (reason === 'policy-denied' || reason === 'default-denied') return 'dropped';
  if (reason === 'event-rate-limited' || reason === 'unknown') return 'none';
  return 'forwarded';
}

/**
 * One flow verdict from the programs: sent for the first packet of every
 * admitted flow (creating its conntrack entry) and for every dropped packet,
 * within the per-CPU rate limit (config.events_per_sec / events_burst).
 * Endpoint is cluster/namespace/name of the local endpoint whose policy
 * judged the packet (undefined if it was removed since).
 */
export interface FlowEvent {
  /** kernel monotonic clock (bpf_ktime_get_ns) */
  monotonicNs: bigint;
  /** wall clock estimate of monotonicNs */
  time: Date;
  endpoint: string | undefined;
  endpointIdentity: number;
  direction: FlowDirection;
  verdict: 'forwarded' | 'dropped';
  /** the policy decision: allow, deny, audit (forwarded, would be denied) */
  policyVerdict: 'allow' | 'deny' | 'audit';
  reason: Reason;
  srcIdentity: number;
  dstIdentity: number;
  srcIp: string;
  dstIp: string;
  /** IP protocol number */
  protocol: number;
  srcPort: number;
  dstPort: number;
}

export interface CounterSample {
  direction: FlowDirection;
  reason: Reason;
  verdict: 'forwarded' | 'dropped' | 'none';
  packets: bigint;
  bytes: bigint;
}

/** Number of possible CPUs (the per-CPU value count of a per-CPU map). */
export function possibleCpus(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let n = 0;
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a! + 1;
  }
  return n;
}

/** Per-CPU counters summed over CPUs; only non-zero ones. */
export function readCounters(lib: Libbpf, countersFd: number): CounterSample[] {
  const cpus = possibleCpus();
  const size = STRUCTS.counter_value.size; // already a multiple of 8
  const out: CounterSample[] = [];
  const key = Buffer.alloc(4);
  const value = Buffer.alloc(size * cpus);
  for (const [dirNum, direction] of [
    [1, 'ingress'],
    [2, 'egress'],
  ] as const) {
    for (let reason = 0; reason < REASON_MAX; reason++) {
      key.writeUInt32LE(dirNum * REASON_MAX + reason);
      if (lib.lookup(countersFd, key, value) !== 0) continue;
      let packets = 0n;
      let bytes = 0n;
      for (let c = 0; c < cpus; c++) {
        packets += value.readBigUInt64LE(c * size);
        bytes += value.readBigUInt64LE(c * size + 8);
      }
      if (packets === 0n) continue;
      const name = reasonName(reason);
      out.push({ direction, reason: name, verdict: reasonVerdict(name), packets, bytes });
    }
  }
  return out;
}

export function decodeFlowEvent(
  b: Buffer,
  endpointInSlot: (slot: number) => string | undefined,
  bootTimeMs: number,
): FlowEvent {
  const F = STRUCTS.flow_event.fields;
  const family = b.readUInt8(F.family.offset);
  const reason = reasonName(b.readUInt8(F.reason.offset));
  const v = b.readUInt8(F.verdict.offset);
  const ns = b.readBigUInt64LE(F.ts_ns.offset);
  const slot = b.readUInt32LE(F.ep_slot.offset);
  return {
    monotonicNs: ns,
    time: new Date(bootTimeMs + Number(ns / 1000000n)),
    endpoint: slot === 0xffffffff ? undefined : endpointInSlot(slot),
    endpointIdentity: b.readUInt32LE(F.ep_identity.offset),
    direction: b.readUInt8(F.direction.offset) === 1 ? 'ingress' : 'egress',
    verdict: v === 2 ? 'dropped' : 'forwarded',
    policyVerdict: v === 2 ? 'deny' : v === 3 ? 'audit' : 'allow',
    reason,
    srcIdentity: b.readUInt32LE(F.src_identity.offset),
    dstIdentity: b.readUInt32LE(F.dst_identity.offset),
    srcIp: decodeAddress(family, b, F.saddr.offset),
    dstIp: decodeAddress(family, b, F.daddr.offset),
    protocol: b.readUInt8(F.proto.offset),
    srcPort: b.readUInt16LE(F.sport.offset),
    dstPort: b.readUInt16LE(F.dport.offset),
  };
}

/** Wall-clock time of the monotonic clock's zero (bpf_ktime_get_ns counts from boot). */
function monotonicZeroMs(): number {
  return Date.now() - Number(process.hrtime.bigint() / 1000000n);
}

/**
 * Reads the programs' ring buffer without blocking the event loop: every
 * `intervalMs` it calls ring_buffer__consume (which returns at once with
 * what is there) and hands decoded events to each subscriber. A subscriber
 * that falls behind by more than `maxQueued` events loses the oldest
 * (counted in `lost`). One reader per ring buffer (per node).
 */
export class FlowEventReader {
  readonly #lib: Libbpf;
  readonly #rb: Pointer;
  readonly #callback: bigint;
  readonly #timer: NodeJS.Timeout;
  readonly #subscribers = new Set<AsyncQueue<FlowEvent>>();
  readonly #maxQueued: number;
  readonly #zeroMs = monotonicZeroMs();
  #closed = false;
  /** events dropped because a subscriber fell behind */
  lost = 0;

  constructor(
    lib: Libbpf,
    eventsFd: number,
    private readonly endpointInSlot: (slot: number) => string | undefined,
    opts: { intervalMs?: number; maxQueued?: number } = {},
  ) {
    this.#lib = lib;
    this.#maxQueued = opts.maxQueued ?? 10_000;
    this.#callback = lib.registerSample((_ctx, data, size) => {
      this.#deliver(lib.copy(data, Number(size)));
      return 0;
    });
    const rb = lib.ringBufferNew(eventsFd, this.#callback, null, null);
    if (rb === null) {
      lib.unregister(this.#callback);
      throw new MeshError('INTERNAL', `ring_buffer__new failed: errno ${lib.errno()}`);
    }
    this.#rb = rb;
    this.#timer = setInterval(() => this.poll(), opts.intervalMs ?? 100);
    this.#timer.unref();
  }

  /** Consumes what the ring buffer holds now; returns the number of events. */
  poll(): number {
    if (this.#closed) return 0;
    return this.#lib.ringBufferConsume(this.#rb);
  }

  #deliver(raw: Buffer): void {
    if (this.#subscribers.size === 0) return;
    const e = decodeFlowEvent(raw, this.endpointInSlot, this.#zeroMs);
    for (const q of this.#subscribers) {
      if (q.size >= this.#maxQueued) {
        q.take(1);
        this.lost += 1;
      }
      q.push(e);
    }
  }

  /** Events from now on, until `signal` aborts or the reader closes. */
  async *events(opts: { signal?: AbortSignal } = {}): AsyncGenerator<FlowEvent> {
    if (this.#closed) return;
    const q = new AsyncQueue<FlowEvent>();
    this.#subscribers.add(q);
    const onAbort = (): void => q.end();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (opts.signal?.aborted) return;
      for await (const e of q) yield e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.#subscribers.delete(q);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#lib.ringBufferFree(this.#rb);
    this.#lib.unregister(this.#callback);
    for (const q of this.#subscribers) q.end();
    this.#subscribers.clear();
  }
}
