import type { Etcd3 } from 'etcd3';
import { MeshError } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';

export const CIDR_IDENTITY_BASE = 1 << 24;
const CIDR_IDENTITY_MAX = (1 << 24) - 1;

/**
 * Mesh-wide CIDR identities, `(1 << 24) | n`, one per prefix a policy names:
 * minted in one transaction per batch (prefix key created only if absent,
 * number from the counter by compare-and-swap), so replicas racing on a
 * prefix agree. Returns prefix -> identity for every prefix asked.
 */
export class CidrIdentityAllocator {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;

  constructor(etcd: Etcd3, layout: KeyLayout) {
    this.#etcd = etcd;
    this.#layout = layout;
  }

  async allocateMany(
    prefixes: readonly string[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<Map<string, { id: number; createRevision: number }>> {
    const L = this.#layout;
    const unique = [...new Set(prefixes)].sort();
    for (let attempt = 0; attempt < 32; attempt++) {
      opts.signal?.throwIfAborted();
      const [counter, ...found] = await Promise.all([
        this.#etcd.get(L.cidrIdentityNext).exec(),
        ...unique.map((p) => this.#etcd.get(L.cidrIdentity(p)).exec()),
      ]);
      const out = new Map<string, { id: number; createRevision: number }>();
      const missing: string[] = [];
      unique.forEach((p, i) => {
        const kv = found[i]!.kvs[0];
        if (!kv) missing.push(p);
        else
          out.set(p, {
            id: (JSON.parse(kv.value.toString()) as { id: number }).id,
            createRevision: Number(kv.create_revision),
          });
      });
      if (missing.length === 0) return out;
      const c = counter.kvs[0];
      const next = c ? Number(c.value.toString()) : 1;
      if (next + missing.length - 1 > CIDR_IDENTITY_MAX) {
        throw new MeshError('IDENTITY_EXHAUSTED', 'no CIDR identity left in the mesh');
      }
      let txn = this.#etcd.if(L.cidrIdentityNext, 'Mod', '==', c ? Number(c.mod_revision) : 0);
      const ops = [];
      for (const [i, p] of missing.entries()) {
        const id = (CIDR_IDENTITY_BASE | (next + i)) >>> 0;
        txn = txn.and(L.cidrIdentity(p), 'Create', '==', 0);
        ops.push(this.#etcd.put(L.cidrIdentity(p)).value(JSON.stringify({ id })));
        out.set(p, { id, createRevision: 0 });
      }
      ops.push(this.#etcd.put(L.cidrIdentityNext).value(String(next + missing.length)));
      const res = await txn.then(...ops).commit();
      if (res.succeeded) {
        for (const p of missing) out.get(p)!.createRevision = Number(res.header.revision);
        return out;
      }
    }
    throw new MeshError('CONFLICT', 'CIDR identity allocation lost 32 races in a row');
  }
}
