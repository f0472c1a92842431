import type { Etcd3 } from 'etcd3';
import { MeshError, type ChangeSetEvent } from '../../common/index.js';
import type { LabelFilter } from '../identity/index.js';
import type { StoredPod } from '../model/index.js';
import type { KeyLayout } from '../store/index.js';
import {
  alreadyApplied,
  planChangeSet,
  type ClusterReadState,
  type SourcePosition,
} from './plan.js';

export type CommitOutcome =
  | { status: 'committed'; revision: number; allocated: number }
  | { status: 'duplicate'; applied: SourcePosition };

/**
 * Commits change sets to etcd, each in one transaction guarded by the
 * cluster's source sequence: a replayed or reordered event never moves state
 * backwards, and two writers racing on one cluster (or one label set) cannot
 * both win — the loser re-reads and re-plans.
 */
export class ChangeSetCommitter {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;
  readonly #filter: LabelFilter;
  readonly #maxAttempts: number;

  constructor(
    etcd: Etcd3,
    layout: KeyLayout,
    filter: LabelFilter,
    opts: { maxAttempts?: number } = {},
  ) {
    this.#etcd = etcd;
    this.#layout = layout;
    this.#filter = filter;
    this.#maxAttempts = opts.maxAttempts ?? 8;
  }

  async commit(
    ev: ChangeSetEvent,
    position: SourcePosition,
    opts: { signal?: AbortSignal } = {},
  ): Promise<CommitOutcome> {
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      opts.signal?.throwIfAborted();
      const { read, guards } = await this.#read(ev);
      if (alreadyApplied(read.position, position))
        return { status: 'duplicate', applied: read.position! };
      const plan = planChangeSet(this.#layout, ev, position, read, this.#filter);
      const ids = this.#idKey(ev.cluster.id);
      let txn = this.#etcd
        .if(this.#layout.sourceSequence(ev.cluster.name), 'Mod', '==', guards.sequenceMod)
        .and(ids, 'Mod', '==', guards.idOwnerMod);
      for (const k of plan.createdKeys) txn = txn.and(k, 'Create', '==', 0);
      const res = await txn
        .then(
          ...plan.puts.map((p) => this.#etcd.put(p.key).value(p.value)),
          ...plan.deletes.map((k) => this.#etcd.delete().key(k)),
          ...(guards.idOwnerMod === 0 ? [this.#etcd.put(ids).value(ev.cluster.name)] : []),
        )
        .commit();
      if (res.succeeded) {
        return {
          status: 'committed',
          revision: Number(res.header.revision),
          allocated: plan.allocated,
        };
      }
    }
    throw new MeshError(
      'CONFLICT',
      `change set for cluster ${ev.cluster.name} lost ${this.#maxAttempts} transaction races in a row`,
    );
  }

  #idKey(id: number): string {
    return `${this.#layout.bookkeeping}cluster-ids/${id}`;
  }

  async #read(
    ev: ChangeSetEvent,
  ): Promise<{ read: ClusterReadState; guards: { sequenceMod: number; idOwnerMod: number } }> {
    const c = ev.cluster.name;
    const L = this.#layout;
    const [info, seq, next, owner, namespaces, identities] = await Promise.all([
      this.#etcd.get(L.clusterInfo(c)).exec(),
      this.#etcd.get(L.sourceSequence(c)).exec(),
      this.#etcd.get(L.identityNext(c)).exec(),
      this.#etcd.get(this.#idKey(ev.cluster.id)).exec(),
      this.#etcd
        .getAll()
        .prefix(`${L.objects(c)}Namespace/`)
        .strings(),
      this.#etcd.getAll().prefix(L.identityByLabels(c, '')).strings(),
    ]);
    const first = (r: typeof info): { value: string; mod: number } | undefined => {
      const kv = r.kvs[0];
      return kv ? { value: kv.value.toString(), mod: Number(kv.mod_revision) } : undefined;
    };
    const namespaceLabels = new Map<string, Record<string, string>>();
    for (const v of Object.values(namespaces)) {
      const ns = JSON.parse(v) as { name: string; labels: Record<string, string> };
      namespaceLabels.set(ns.name, ns.labels);
    }
    const identityByHash = new Map<string, number>();
    for (const [k, v] of Object.entries(identities)) {
      identityByHash.set(
        k.slice(L.identityByLabels(c, '').length),
        (JSON.parse(v) as { id: number }).id,
      );
    }
    // Namespaces whose labels change: their stored pods need new identities.
    const changed = ev.upserts.filter(
      (o) =>
        o.kind === 'Namespace' &&
        JSON.stringify(namespaceLabels.get(o.name)) !== JSON.stringify(o.labels),
    );
    const podsOfChanged: StoredPod[] = [];
    for (const ns of changed) {
      const pods = await this.#etcd
        .getAll()
        .prefix(`${L.objects(c)}Pod/${ns.name}/`)
        .strings();
      for (const v of Object.values(pods)) podsOfChanged.push(JSON.parse(v) as StoredPod);
    }
    const objectKeys = new Set<string>();
    if (ev.full) {
      for (const k of await this.#etcd.getAll().prefix(L.objects(c)).keys())
        objectKeys.add(k.slice(L.objects(c).length));
    }
    const s = first(seq);
    const o = first(owner);
    return {
      read: {
        info: first(info)
          ? (JSON.parse(first(info)!.value) as ChangeSetEvent['cluster'])
          : undefined,
        position: s ? (JSON.parse(s.value) as SourcePosition) : undefined,
        nextLocal: first(next) ? Number(first(next)!.value) : 0,
        idOwner: o?.value,
        namespaces: namespaceLabels,
        identities: identityByHash,
        objectKeys,
        podsOfChangedNamespaces: podsOfChanged,
      },
      guards: { sequenceMod: s?.mod ?? 0, idOwnerMod: o?.mod ?? 0 },
    };
  }
}
