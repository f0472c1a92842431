import type { Etcd3 } from 'etcd3';
import { MeshError, type Clock } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';
import { canonicalLabels, labelsHash } from './labels.js';
import { CLUSTER_LOCAL_MAX, CLUSTER_LOCAL_MIN, clusterIdentity } from './numbering.js';

export interface AllocatedIdentity {
  id: number;
  hash: string;
  /** etcd create revision of the label-set key: commits compare it, so a GC in between is caught */
  createRevision: number;
  /** true when this call minted the number */
  created: boolean;
}

export interface AllocatorOptions {
  /** a released number is not handed out again within this period (default 15 min) */
  reuseGraceMs?: number;
  maxAttempts?: number;
  /** called when a cluster's range is exhausted (metrics hook) */
  onExhausted?: (cluster: string) => void;
}

/**
 * Cluster-scoped identity allocation in etcd. A label set's key is created
 * only if absent, and the number comes from the cluster's counter by
 * compare-and-swap, in one transaction: replicas racing on one label set get
 * one number, and no number goes to two label sets. When the counter is
 * exhausted, numbers released longer ago than the grace period are reused;
 * otherwise allocation fails with IDENTITY_EXHAUSTED (never a wrapped number).
 */
export class IdentityAllocator {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;
  readonly #clock: Clock;
  readonly #graceMs: number;
  readonly #maxAttempts: number;
  readonly #onExhausted: (cluster: string) => void;

  constructor(etcd: Etcd3, layout: KeyLayout, clock: Clock, opts: AllocatorOptions = {}) {
    this.#etcd = etcd;
    this.#layout = layout;
    this.#clock = clock;
    this.#graceMs = opts.reuseGraceMs ?? 15 * 60_000;
    this.#maxAttempts = opts.maxAttempts ?? 64;
    this.#onExhausted = opts.onExhausted ?? (() => undefined);
  }

  /** The identity of a label set in a cluster, minting one if it has none. Idempotent. */
  async allocate(
    cluster: { name: string; id: number },
    labels: Record<string, string>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<AllocatedIdentity> {
    const hash = labelsHash(labels);
    const L = this.#layout;
    const byLabels = L.identityByLabels(cluster.name, hash);
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      opts.signal?.throwIfAborted();
      const [existing, counter] = await Promise.all([
        this.#etcd.get(byLabels).exec(),
        this.#etcd.get(L.identityNext(cluster.name)).exec(),
      ]);
      const kv = existing.kvs[0];
      if (kv) {
        return {
          id: (JSON.parse(kv.value.toString()) as { id: number }).id,
          hash,
          createRevision: Number(kv.create_revision),
          created: false,
        };
      }
      const c = counter.kvs[0];
      const next = c ? Number(c.value.toString()) : CLUSTER_LOCAL_MIN;
      const counterMod = c ? Number(c.mod_revision) : 0;
      let local: number;
      let releasedKey: string | undefined;
      let releasedMod = 0;
      if (next <= CLUSTER_LOCAL_MAX) {
        local = next;
      } else {
        const reusable = await this.#oldestReusable(cluster.name);
        if (!reusable) {
          this.#onExhausted(cluster.name);
          throw new MeshError(
            'IDENTITY_EXHAUSTED',
            `cluster ${cluster.name} (id ${cluster.id}) has used all ${CLUSTER_LOCAL_MAX - CLUSTER_LOCAL_MIN + 1} identities and none was released more than ${Math.round(this.#graceMs / 1000)} s ago`,
          );
        }
        ({ local, key: releasedKey, mod: releasedMod } = reusable);
      }
      const id = clusterIdentity(cluster.id, local);
      const byId = L.identityById(cluster.name, id);
      let txn = this.#etcd
        .if(byLabels, 'Create', '==', 0)
        .and(byId, 'Create', '==', 0)
        .and(L.identityNext(cluster.name), 'Mod', '==', counterMod);
      if (releasedKey) txn = txn.and(releasedKey, 'Mod', '==', releasedMod);
      const res = await txn
        .then(
          this.#etcd.put(byLabels).value(JSON.stringify({ id, labels })),
          this.#etcd.put(byId).value(JSON.stringify({ hash, labels: canonicalLabels(labels) })),
          releasedKey
            ? this.#etcd.delete().key(releasedKey)
            : this.#etcd.put(L.identityNext(cluster.name)).value(String(next + 1)),
        )
        .commit();
      if (res.succeeded) {
        return { id, hash, createRevision: Number(res.header.revision), created: true };
      }
    }
    throw new MeshError(
      'CONFLICT',
      `identity allocation for cluster ${cluster.name} lost ${this.#maxAttempts} races in a row`,
    );
  }

  /**
   * Identities of many label sets of one cluster: existing ones are read in
   * parallel, and all missing ones are minted in ONE transaction (consecutive
   * numbers from the counter, each label-set key created only if absent). A
   * lost race re-reads and retries; near exhaustion it falls back to one at
   * a time (number reuse). Returns one result per input, in order.
   */
  async allocateMany(
    cluster: { name: string; id: number },
    sets: readonly Record<string, string>[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<AllocatedIdentity[]> {
    const L = this.#layout;
    const hashes = sets.map((l) => labelsHash(l));
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      opts.signal?.throwIfAborted();
      const unique = [...new Set(hashes)];
      const [counter, ...found] = await Promise.all([
        this.#etcd.get(L.identityNext(cluster.name)).exec(),
        ...unique.map((h) => this.#etcd.get(L.identityByLabels(cluster.name, h)).exec()),
      ]);
      const known = new Map<string, AllocatedIdentity>();
      const missing: string[] = [];
      unique.forEach((h, i) => {
        const kv = found[i]!.kvs[0];
        if (kv) {
          known.set(h, {
            id: (JSON.parse(kv.value.toString()) as { id: number }).id,
            hash: h,
            createRevision: Number(kv.create_revision),
            created: false,
          });
        } else {
          missing.push(h);
        }
      });
      if (missing.length > 0) {
        const c = counter.kvs[0];
        const next = c ? Number(c.value.toString()) : CLUSTER_LOCAL_MIN;
        if (next + missing.length - 1 > CLUSTER_LOCAL_MAX) {
          // Near the end of the range: one at a time, with reuse of released numbers.
          const out: AllocatedIdentity[] = [];
          for (const labels of sets) out.push(await this.allocate(cluster, labels, opts));
          return out;
        }
        const labelsOf = new Map(hashes.map((h, i) => [h, sets[i]!]));
        let txn = this.#etcd.if(
          L.identityNext(cluster.name),
          'Mod',
          '==',
          c ? Number(c.mod_revision) : 0,
        );
        const ops = [];
        const minted: AllocatedIdentity[] = [];
        missing.forEach((h, i) => {
          const id = clusterIdentity(cluster.id, next + i);
          const labels = labelsOf.get(h)!;
          txn = txn
            .and(L.identityByLabels(cluster.name, h), 'Create', '==', 0)
            .and(L.identityById(cluster.name, id), 'Create', '==', 0);
          ops.push(
            this.#etcd
              .put(L.identityByLabels(cluster.name, h))
              .value(JSON.stringify({ id, labels })),
            this.#etcd
              .put(L.identityById(cluster.name, id))
              .value(JSON.stringify({ hash: h, labels: canonicalLabels(labels) })),
          );
          minted.push({ id, hash: h, createRevision: 0, created: true });
        });
        ops.push(this.#etcd.put(L.identityNext(cluster.name)).value(String(next + missing.length)));
        const res = await txn.then(...ops).commit();
        if (!res.succeeded) continue;
        for (const m of minted)
          known.set(m.hash, { ...m, createRevision: Number(res.header.revision) });
      }
      return hashes.map((h) => known.get(h)!);
    }
    throw new MeshError(
      'CONFLICT',
      `identity allocation for cluster ${cluster.name} lost ${this.#maxAttempts} races in a row`,
    );
  }

  async #oldestReusable(
    cluster: string,
  ): Promise<{ local: number; key: string; mod: number } | undefined> {
    const prefix = this.#layout.identityReleased(cluster, '');
    const res = await this.#etcd.getAll().prefix(prefix).exec();
    const now = this.#clock.now();
    let best: { local: number; key: string; mod: number; at: number } | undefined;
    for (const kv of res.kvs) {
      const at = Number(kv.value.toString());
      if (now - at < this.#graceMs) continue;
      const key = kv.key.toString();
      const local = Number(key.slice(prefix.length));
      if (!best || at < best.at) best = { local, key, mod: Number(kv.mod_revision), at };
    }
    return best;
  }
}
