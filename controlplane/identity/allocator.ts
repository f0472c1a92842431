import type { Etcd3, IRangeResponse } from 'etcd3';
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

/** A cluster's identities as last seen, and its counter (next number, mod revision). */
interface ClusterCache {
  counter?: { next: number; mod: number } | undefined;
  known: Map<string, { id: number; createRevision: number }>;
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
  /** by cluster name: what allocateMany read or minted (see there) */
  readonly #caches = new Map<string, ClusterCache>();

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
   * Identities of many label sets of one cluster. What this allocator read
   * or minted before is taken from its cache, and the missing ones are
   * minted in ONE transaction (consecutive numbers from the counter, each
   * label-set key and number created only if absent, the counter compared
   * by revision) whose failure branch reads the counter and those label-set
   * keys back — so allocation needs no read round trip of its own, and a
   * lost race costs the retry only. Near exhaustion it falls back to one at
   * a time (number reuse). Returns one result per input, in order.
   *
   * A cached identity may have been collected meanwhile: every commit
   * compares its label-set key's create revision, and a commit that failed
   * calls again with `fresh` (the cache is dropped for these sets and the
   * counter, and etcd read again).
   */
  async allocateMany(
    cluster: { name: string; id: number },
    sets: readonly Record<string, string>[],
    opts: { signal?: AbortSignal; fresh?: boolean } = {},
  ): Promise<AllocatedIdentity[]> {
    const L = this.#layout;
    const hashes = sets.map((l) => labelsHash(l));
    const unique = [...new Set(hashes)];
    const cache = this.#cacheOf(cluster.name);
    if (opts.fresh === true) {
      for (const h of unique) cache.known.delete(h);
      cache.counter = undefined;
    }
    const minted = new Set<string>();
    const result = (): AllocatedIdentity[] =>
      hashes.map((h) => ({ ...cache.known.get(h)!, hash: h, created: minted.has(h) }));
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      opts.signal?.throwIfAborted();
      let missing = unique.filter((h) => !cache.known.has(h));
      if (missing.length === 0) return result();
      if (cache.counter === undefined) {
        const [counter, ...found] = await Promise.all([
          this.#etcd.get(L.identityNext(cluster.name)).exec(),
          ...missing.map((h) => this.#etcd.get(L.identityByLabels(cluster.name, h)).exec()),
        ]);
        this.#learn(cache, missing, counter, found);
        missing = unique.filter((h) => !cache.known.has(h));
        if (missing.length === 0) return result();
      }
      const counter = cache.counter!;
      if (counter.next + missing.length - 1 > CLUSTER_LOCAL_MAX) {
        // Near the end of the range: one at a time, with reuse of released numbers.
        const out: AllocatedIdentity[] = [];
        for (const labels of sets) out.push(await this.allocate(cluster, labels, opts));
        return out;
      }
      const labelsOf = new Map(hashes.map((h, i) => [h, sets[i]!]));
      let txn = this.#etcd.if(L.identityNext(cluster.name), 'Mod', '==', counter.mod);
      const ops = [];
      missing.forEach((h, i) => {
        const id = clusterIdentity(cluster.id, counter.next + i);
        const labels = labelsOf.get(h)!;
        txn = txn
          .and(L.identityByLabels(cluster.name, h), 'Create', '==', 0)
          .and(L.identityById(cluster.name, id), 'Create', '==', 0);
        ops.push(
          this.#etcd.put(L.identityByLabels(cluster.name, h)).value(JSON.stringify({ id, labels })),
          this.#etcd
            .put(L.identityById(cluster.name, id))
            .value(JSON.stringify({ hash: h, labels: canonicalLabels(labels) })),
        );
      });
      ops.push(
        this.#etcd.put(L.identityNext(cluster.name)).value(String(counter.next + missing.length)),
      );
      const res = await txn
        .then(...ops)
        .else(
          this.#etcd.get(L.identityNext(cluster.name)),
          ...missing.map((h) => this.#etcd.get(L.identityByLabels(cluster.name, h))),
        )
        .commit();
      if (!res.succeeded) {
        // Lost a race (or the counter moved): learn what is there now, and try again.
        const [counterNow, ...found] = res.responses.map((r) => r.response_range);
        this.#learn(cache, missing, counterNow!, found);
        continue;
      }
      const revision = Number(res.header.revision);
      missing.forEach((h, i) => {
        cache.known.set(h, {
          id: clusterIdentity(cluster.id, counter.next + i),
          createRevision: revision,
        });
        minted.add(h);
      });
      cache.counter = { next: counter.next + missing.length, mod: revision };
      return result();
    }
    throw new MeshError(
      'CONFLICT',
      `identity allocation for cluster ${cluster.name} lost ${this.#maxAttempts} races in a row`,
    );
  }

  #cacheOf(cluster: string): ClusterCache {
    let cache = this.#caches.get(cluster);
    if (!cache) this.#caches.set(cluster, (cache = { known: new Map() }));
    return cache;
  }

  /** Counter and label-set keys as read from etcd, into the cache. */
  #learn(
    cache: ClusterCache,
    hashes: readonly string[],
    counter: Pick<IRangeResponse, 'kvs'>,
    found: readonly Pick<IRangeResponse, 'kvs'>[],
  ): void {
    const c = counter.kvs[0];
    cache.counter = c
      ? { next: Number(c.value.toString()), mod: Number(c.mod_revision) }
      : { next: CLUSTER_LOCAL_MIN, mod: 0 };
    hashes.forEach((h, i) => {
      const kv = found[i]?.kvs[0];
      if (kv) {
        cache.known.set(h, {
          id: (JSON.parse(kv.value.toString()) as { id: number }).id,
          createRevision: Number(kv.create_revision),
        });
      }
    });
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
