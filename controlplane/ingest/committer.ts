import type { Etcd3 } from 'etcd3';
import {
  MeshError,
  systemClock,
  type ChangeSetEvent,
  type Clock,
  type ClusterSpec,
  type PodObject,
} from '../../common/index.js';
import type { CidrIdentityAllocator, IdentityAllocator, LabelFilter } from '../identity/index.js';
import { parsePolicy, requiredPrefixes } from '../policy/index.js';
import type { ClustersetIpAllocator } from '../services/index.js';
import type { StoredPod } from '../model/index.js';
import type { KeyLayout } from '../store/index.js';
import { mergeChangeSets } from './merge.js';
import {
  alreadyApplied,
  checkMembership,
  planChangeSet,
  podIdentityLabels,
  podsToWrite,
  type ClusterReadState,
  type Membership,
  type SourcePosition,
} from './plan.js';

export type CommitOutcome =
  | { status: 'committed'; revision: number; allocated: number }
  | { status: 'duplicate'; applied: SourcePosition };

export interface CommitItem {
  event: ChangeSetEvent;
  position: SourcePosition;
}

/** One etcd transaction compare: key, then target, operator and value as etcd3's `if` takes them. */
interface Compare {
  key: string;
  compare: ['Mod' | 'Create', '==', number];
}

interface Prepared {
  status: 'ready';
  compares: Compare[];
  ops: (ReturnType<Etcd3['put']> | ReturnType<Etcd3['delete']>)[];
  allocated: number;
}

/** A cluster's state as the first read of a commit sees it, with the revisions the transaction compares. */
interface ClusterFirstRead {
  member: Membership | undefined;
  info: ClusterSpec | undefined;
  position: SourcePosition | undefined;
  namespaces: Map<string, Record<string, string>>;
  sequenceMod: number;
  memberMod: number;
}

/**
 * Commits change sets to etcd, each in one transaction guarded by the
 * cluster's source position and membership: a replayed or reordered event
 * never moves state backwards, a cluster removed meanwhile is not
 * resurrected, and an identity garbage-collected between allocation and
 * commit is caught (its label-set key's create revision is compared) — the
 * loser re-reads and re-plans.
 */
export class ChangeSetCommitter {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;
  readonly #filter: LabelFilter;
  readonly #allocator: IdentityAllocator;
  readonly #maxAttempts: number;
  readonly #cidrs: CidrIdentityAllocator | undefined;
  readonly #serviceIps: ClustersetIpAllocator | undefined;
  readonly #clock: Clock;

  constructor(
    etcd: Etcd3,
    layout: KeyLayout,
    filter: LabelFilter,
    allocator: IdentityAllocator,
    opts: {
      maxAttempts?: number;
      cidrs?: CidrIdentityAllocator;
      serviceIps?: ClustersetIpAllocator;
      clock?: Clock;
    } = {},
  ) {
    this.#cidrs = opts.cidrs;
    this.#serviceIps = opts.serviceIps;
    this.#clock = opts.clock ?? systemClock;
    this.#etcd = etcd;
    this.#layout = layout;
    this.#filter = filter;
    this.#allocator = allocator;
    this.#maxAttempts = opts.maxAttempts ?? 8;
  }

  /** Commits one change set at `position` (see `commitMany`). */
  commit(
    ev: ChangeSetEvent,
    position: SourcePosition,
    opts: { signal?: AbortSignal } = {},
  ): Promise<CommitOutcome> {
    return this.commitMany([{ event: ev, position }], opts);
  }

  /**
   * Commits consecutive change sets of ONE cluster, in stream order, as one
   * transaction: those at or before the cluster's stored position are
   * replays and are dropped, the rest are folded (`mergeChangeSets`) and the
   * position moves to the last one.
   */
  async commitMany(
    items: readonly CommitItem[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<CommitOutcome> {
    return (await this.commitClusters([items], opts))[0]!;
  }

  /**
   * commitMany for several clusters at once (one group per cluster, each as
   * commitMany takes it), in ONE transaction holding every group's guards:
   * one etcd revision, so one mesh revision, for what arrived together.
   * All or nothing: a refusal of any group (not a member, id clash, range
   * exhausted, invalid) rejects the whole call with nothing written; the
   * caller commits the groups one by one to find it.
   */
  async commitClusters(
    groups: readonly (readonly CommitItem[])[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<CommitOutcome[]> {
    const clusters = groups.map((items) => {
      const last = items.at(-1);
      if (!last) throw new MeshError('VALIDATION', 'commitMany: no change sets');
      return last.event.cluster.name;
    });
    if (new Set(clusters).size !== clusters.length) {
      throw new MeshError('INTERNAL', 'commitClusters: one group per cluster');
    }
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      opts.signal?.throwIfAborted();
      // After a failed transaction, cached identities are read again (one may have been collected).
      const fresh = attempt > 1;
      const prepared = await Promise.all(groups.map((g) => this.#prepare(g, fresh, opts.signal)));
      const ready = prepared.filter((p): p is Prepared => p.status === 'ready');
      if (ready.length === 0) return prepared as CommitOutcome[];
      // Every ready group has its position and membership compares, so there is a first one.
      const [head, ...rest] = ready.flatMap((p) => p.compares);
      let txn = this.#etcd.if(head!.key, ...head!.compare);
      for (const c of rest) txn = txn.and(c.key, ...c.compare);
      const res = await txn.then(...ready.flatMap((p) => p.ops)).commit();
      if (res.succeeded) {
        const revision = Number(res.header.revision);
        return prepared.map((p) =>
          p.status === 'ready' ? { status: 'committed', revision, allocated: p.allocated } : p,
        );
      }
    }
    throw new MeshError(
      'CONFLICT',
      `change sets for cluster${clusters.length > 1 ? 's' : ''} ${clusters.join(', ')} lost ${this.#maxAttempts} transaction races in a row`,
    );
  }

  /** Reads, allocates and plans one cluster's group: its compares and writes, or that it is a replay. */
  async #prepare(
    items: readonly CommitItem[],
    freshIdentities: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Prepared | { status: 'duplicate'; applied: SourcePosition }> {
    const position = items.at(-1)!.position;
    const cluster = items.at(-1)!.event.cluster.name;
    const first = await this.#readCluster(cluster);
    const stored = first.position;
    const fresh = items.filter((i) => !alreadyApplied(stored, i.position));
    if (fresh.length === 0) return { status: 'duplicate', applied: stored! };
    const ev = mergeChangeSets(fresh.map((i) => i.event));
    const read = await this.#readFor(ev, first);
    checkMembership(ev, read.member);
    const cidrGuards = await this.#allocateCidrIdentities(ev, signal);
    await this.#serviceIps?.ensure(
      ev.upserts.filter((o) => o.kind === 'ServiceExport'),
      signal ? { signal } : {},
    );
    const exportsSeen = await this.#recordExportTimes(ev);
    const { pods, namespaces } = podsToWrite(ev, read);
    const resolved = await this.#resolveIdentities(
      ev.cluster,
      pods,
      namespaces,
      freshIdentities,
      signal,
    );
    // Each change set's context, then the further callers it carries (links of the revision span).
    const traceparents = fresh.flatMap((i) => [
      ...(i.event.traceparent ? [i.event.traceparent] : []),
      ...(i.event.traceLinks ?? []),
    ]);
    const written = traceparents.length > 0 ? { ...position, traceparents } : position;
    const plan = planChangeSet(this.#layout, exportsSeen, written, read, resolved.pods);
    // The position's and membership's revisions: a commit or a removal in between fails the transaction.
    const compares: Compare[] = [
      { key: this.#layout.sourceSequence(cluster), compare: ['Mod', '==', first.sequenceMod] },
      { key: this.#layout.member(cluster), compare: ['Mod', '==', first.memberMod] },
    ];
    for (const [key, rev] of resolved.guards)
      compares.push({ key, compare: ['Create', '==', rev] });
    for (const [key, rev] of cidrGuards) compares.push({ key, compare: ['Create', '==', rev] });
    return {
      status: 'ready',
      compares,
      ops: [
        ...plan.puts.map((p) => this.#etcd.put(p.key).value(p.value)),
        ...plan.deletes.map((k) => this.#etcd.delete().key(k)),
      ],
      allocated: resolved.allocated,
    };
  }

  /** CIDR identities for the prefixes the change set's policies name (mesh-wide, created if absent). */
  async #allocateCidrIdentities(
    ev: ChangeSetEvent,
    signal: AbortSignal | undefined,
  ): Promise<Map<string, number>> {
    const guards = new Map<string, number>();
    if (!this.#cidrs) return guards;
    const prefixes: string[] = [];
    for (const o of ev.upserts) {
      if (
        o.kind !== 'NetworkPolicy' &&
        o.kind !== 'CiliumNetworkPolicy' &&
        o.kind !== 'CiliumClusterwideNetworkPolicy'
      )
        continue;
      const parsed = parsePolicy(o);
      if (parsed.ok) prefixes.push(...requiredPrefixes(parsed.value));
    }
    if (prefixes.length === 0) return guards;
    const ids = await this.#cidrs.allocateMany(prefixes, signal ? { signal } : {});
    // The commit requires them to still exist: a GC in between makes it retry (and re-allocate).
    for (const [prefix, a] of ids) guards.set(this.#layout.cidrIdentity(prefix), a.createRevision);
    return guards;
  }

  /**
   * A ServiceExport without creationTimestamp is aged by when the control
   * plane first recorded it; that time is stored with it and kept across
   * resyncs (a republished export keeps its place in oldest-wins).
   */
  async #recordExportTimes(ev: ChangeSetEvent): Promise<ChangeSetEvent> {
    const exports = ev.upserts.filter(
      (o) => o.kind === 'ServiceExport' && o.creationTimestamp === undefined,
    );
    if (exports.length === 0) return ev;
    const stored = await this.#etcd
      .getAll()
      .prefix(`${this.#layout.objects(ev.cluster.name)}ServiceExport/`)
      .strings();
    const now = new Date(this.#clock.now()).toISOString();
    const upserts = ev.upserts.map((o) => {
      if (o.kind !== 'ServiceExport' || o.creationTimestamp !== undefined) return o;
      const prev = stored[this.#layout.object(ev.cluster.name, o)];
      const recordedAt = prev
        ? ((JSON.parse(prev) as { recordedAt?: string }).recordedAt ?? now)
        : now;
      return { ...o, recordedAt };
    });
    return { ...ev, upserts };
  }

  async #resolveIdentities(
    cluster: ClusterSpec,
    pods: PodObject[],
    namespaces: Map<string, Record<string, string>>,
    fresh: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{
    pods: { pod: PodObject; identity: number }[];
    guards: Map<string, number>;
    allocated: number;
  }> {
    const byHash = new Map<string, { labels: Record<string, string>; pods: PodObject[] }>();
    // Pods of one Deployment share their labels: filter, sort and hash each distinct set once.
    const memo = new Map<string, { labels: Record<string, string>; hash: string }>();
    for (const pod of pods) {
      const input = JSON.stringify([pod.namespace, pod.serviceAccount, pod.labels]);
      let resolved = memo.get(input);
      if (!resolved) {
        resolved = podIdentityLabels(cluster.name, pod, namespaces, this.#filter);
        memo.set(input, resolved);
      }
      const { labels, hash } = resolved;
      const entry = byHash.get(hash) ?? { labels, pods: [] };
      entry.pods.push(pod);
      byHash.set(hash, entry);
    }
    const out: { pod: PodObject; identity: number }[] = [];
    const guards = new Map<string, number>();
    let allocated = 0;
    const groups = [...byHash.values()];
    const identities = await this.#allocator.allocateMany(
      cluster,
      groups.map((g) => g.labels),
      { ...(signal ? { signal } : {}), fresh },
    );
    identities.forEach((a, i) => {
      if (a.created) allocated += 1;
      guards.set(this.#layout.identityByLabels(cluster.name, a.hash), a.createRevision);
      for (const pod of groups[i]!.pods) out.push({ pod, identity: a.id });
    });
    return { pods: out, guards, allocated };
  }

  /** What every commit needs of a cluster, in one round trip. */
  async #readCluster(c: string): Promise<ClusterFirstRead> {
    const L = this.#layout;
    const [member, info, seq, namespaces] = await Promise.all([
      this.#etcd.get(L.member(c)).exec(),
      this.#etcd.get(L.clusterInfo(c)).exec(),
      this.#etcd.get(L.sourceSequence(c)).exec(),
      this.#etcd
        .getAll()
        .prefix(`${L.objects(c)}Namespace/`)
        .strings(),
    ]);
    const namespaceLabels = new Map<string, Record<string, string>>();
    for (const v of Object.values(namespaces)) {
      const ns = JSON.parse(v) as { name: string; labels: Record<string, string> };
      namespaceLabels.set(ns.name, ns.labels);
    }
    const m = member.kvs[0];
    const i = info.kvs[0];
    const s = seq.kvs[0];
    return {
      member: m ? (JSON.parse(m.value.toString()) as Membership) : undefined,
      info: i ? (JSON.parse(i.value.toString()) as ClusterSpec) : undefined,
      position: s ? (JSON.parse(s.value.toString()) as SourcePosition) : undefined,
      namespaces: namespaceLabels,
      sequenceMod: s ? Number(s.mod_revision) : 0,
      memberMod: m ? Number(m.mod_revision) : 0,
    };
  }

  /**
   * The rest a change set needs, read only when it needs it: stored pods of
   * namespaces whose labels it changes, and for a full change set every
   * stored object key (to delete what it does not name). Read after the
   * first read, so the transaction's position compare covers them too.
   */
  async #readFor(ev: ChangeSetEvent, first: ClusterFirstRead): Promise<ClusterReadState> {
    const c = ev.cluster.name;
    const L = this.#layout;
    // Namespaces whose labels change: their stored pods need new identities.
    const changed = ev.upserts.filter(
      (o) =>
        o.kind === 'Namespace' &&
        JSON.stringify(first.namespaces.get(o.name)) !== JSON.stringify(o.labels),
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
    return {
      member: first.member,
      info: first.info,
      position: first.position,
      namespaces: first.namespaces,
      objectKeys,
      podsOfChangedNamespaces: podsOfChanged,
    };
  }
}
