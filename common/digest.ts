import { createHash } from 'node:crypto';
import {
  Direction,
  Verdict,
  type EndpointPolicy,
  type IpcacheShard,
  type ServiceImport,
} from '../proto/index.js';

/**
 * The digest of a node's logical state: an order-independent hash, the sum
 * (mod 2^64) of one hash per state entry. Entries are canonical strings that
 * name endpoints by cluster/namespace/pod, never by ifindex, so the control
 * plane (from resources), the emulated datapath and the eBPF datapath (from
 * what the kernel maps hold) compute the same number for the same state.
 * Adding and removing entries updates a digest in O(delta).
 */

const MASK = (1n << 64n) - 1n;

export function entryHash(entry: string): bigint {
  return createHash('sha256').update(entry).digest().readBigUInt64BE(0);
}

export class Digest {
  #sum = 0n;
  #count = 0;

  add(entry: string): void {
    this.#sum = (this.#sum + entryHash(entry)) & MASK;
    this.#count += 1;
  }

  remove(entry: string): void {
    this.#sum = (this.#sum - entryHash(entry)) & MASK;
    this.#count -= 1;
  }

  get entries(): number {
    return this.#count;
  }

  /** 16 hex digits */
  toString(): string {
    return this.#sum.toString(16).padStart(16, '0');
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
