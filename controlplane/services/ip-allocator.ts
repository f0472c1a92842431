import type { Etcd3 } from 'etcd3';
import { MeshError } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';

function parseCidr(cidr: string): { base: number; size: number } {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o) => o > 255) || !(bits >= 8 && bits <= 30)) {
    throw new MeshError(
      'VALIDATION',
      `clusterset IP range ${cidr} is not an IPv4 CIDR with a prefix of 8..30 bits`,
    );
  }
  const base = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const size = 2 ** (32 - bits);
  return { base: (base & ~(size - 1)) >>> 0, size };
}

const ipText = (n: number): string =>
  [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/**
 * Clusterset IPs for ServiceImports from a configurable range, one per
 * import, created if absent (so replicas agree) and kept in etcd: stable for
 * the import's life and across control plane restarts.
 */
export class ClustersetIpAllocator {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;
  readonly #range: { base: number; size: number };

  constructor(etcd: Etcd3, layout: KeyLayout, cidr: string) {
    this.#etcd = etcd;
    this.#layout = layout;
    this.#range = parseCidr(cidr);
  }

  async ensure(
    services: readonly { namespace: string; name: string }[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const L = this.#layout;
    const unique = [...new Map(services.map((s) => [`${s.namespace}/${s.name}`, s])).values()];
    // Most change sets export nothing: no etcd round trip on their commit path.
    if (unique.length === 0) return;
    for (let attempt = 0; attempt < 32; attempt++) {
      opts.signal?.throwIfAborted();
      const [counter, ...found] = await Promise.all([
        this.#etcd.get(L.serviceIpNext).exec(),
        ...unique.map((s) => this.#etcd.get(L.serviceIp(s.namespace, s.name)).exec()),
      ]);
      const missing = unique.filter((_, i) => found[i]!.kvs.length === 0);
      if (missing.length === 0) return;
      const c = counter.kvs[0];
      const next = c ? Number(c.value.toString()) : 1;
      if (next + missing.length > this.#range.size - 1) {
        throw new MeshError(
          'CAPACITY',
          `the clusterset IP range has no address left for ${missing.length} more import(s)`,
        );
      }
      let txn = this.#etcd.if(L.serviceIpNext, 'Mod', '==', c ? Number(c.mod_revision) : 0);
      const ops = [];
      for (const [i, s] of missing.entries()) {
        txn = txn.and(L.serviceIp(s.namespace, s.name), 'Create', '==', 0);
        ops.push(
          this.#etcd
            .put(L.serviceIp(s.namespace, s.name))
            .value(JSON.stringify({ ip: ipText(this.#range.base + next + i) })),
        );
      }
      ops.push(this.#etcd.put(L.serviceIpNext).value(String(next + missing.length)));
      if ((await txn.then(...ops).commit()).succeeded) return;
    }
    throw new MeshError('CONFLICT', 'clusterset IP allocation lost 32 races in a row');
  }
}
