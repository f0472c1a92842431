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

interface Guards {
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
    items: readonly { event: ChangeSetEvent; position: SourcePosition }[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<CommitOutcome> {
    const lastItem = items.at(-1);
    if (!lastItem) throw new MeshError('VALIDATION', 'commitMany: no change sets');
    const position = lastItem.position;
    const cluster = lastItem.event.cluster.name;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      opts.signal?.throwIfAborted();
      const stored = await this.#position(cluster);
      const fresh = items.filter((i) => !alreadyApplied(stored, i.position));
      if (fresh.length === 0) return { status: 'duplicate', applied: stored! };
      const ev = mergeChangeSets(fresh.map((i) => i.event));
      const { read, guards } = await this.#read(ev);
      // The transaction compares the position key, so a commit in between fails it.
      if (JSON.stringify(read.position) !== JSON.stringify(stored)) continue;
      checkMembership(ev, read.member);
      const cidrGuards = await this.#allocateCidrIdentities(ev, opts.signal);
      await this.#serviceIps?.ensure(
        ev.upserts.filter((o) => o.kind === 'ServiceExport'),
        opts.signal ? { signal: opts.signal } : {},
      );
      const exportsSeen = await this.#recordExportTimes(ev);
      const { pods, namespaces } = podsToWrite(ev, read);
      const resolved = await this.#resolveIdentities(ev.cluster, pods, namespaces, opts.signal);
      const traceparents = fresh.flatMap((i) => (i.event.traceparent ? [i.event.traceparent] : []));
      const written = traceparents.length > 0 ? { ...position, traceparents } : position;
      const plan = planChangeSet(this.#layout, exportsSeen, written, read, resolved.pods);
      let txn = this.#etcd
        .if(this.#layout.sourceSequence(ev.cluster.name), 'Mod', '==', guards.sequenceMod)
        .and(this.#layout.member(ev.cluster.name), 'Mod', '==', guards.memberMod);
      for (const [key, rev] of resolved.guards) txn = txn.and(key, 'Create', '==', rev);
      for (const [key, rev] of cidrGuards) txn = txn.and(key, 'Create', '==', rev);
      const res = await txn
        .then(
          ...plan.puts.map((p) => this.#etcd.put(p.key).value(p.value)),
          ...plan.deletes.map((k) => this.#etcd.delete().key(k)),
        )
        .commit();
      if (res.succeeded) {
        return {
          status: 'committed',
          revision: Number(res.header.revision),
          allocated: resolved.allocated,
        };
      }
    }
    throw new MeshError(
      'CONFLICT',
      `change sets for cluster ${cluster} lost ${this.#maxAttempts} transaction races in a row`,
    );
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

  async #position(cluster: string): Promise<SourcePosition | undefined> {
    const v = await this.#etcd.get(this.#layout.sourceSequence(cluster)).string();
    return v === null ? undefined : (JSON.parse(v) as SourcePosition);
  }

  async #resolveIdentities(
    cluster: ClusterSpec,
    pods: PodObject[],
    namespaces: Map<string, Record<string, string>>,
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
      signal ? { signal } : {},
    );
    identities.forEach((a, i) => {
      if (a.created) allocated += 1;
      guards.set(this.#layout.identityByLabels(cluster.name, a.hash), a.createRevision);
      for (const pod of groups[i]!.pods) out.push({ pod, identity: a.id });
    });
    return { pods: out, guards, allocated };
  }

  async #read(ev: ChangeSetEvent): Promise<{ read: ClusterReadState; guards: Guards }> {
    const c = ev.cluster.name;
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
    const m = member.kvs[0];
    const i = info.kvs[0];
    const s = seq.kvs[0];
    return {
      read: {
        member: m ? (JSON.parse(m.value.toString()) as Membership) : undefined,
        info: i ? (JSON.parse(i.value.toString()) as ClusterSpec) : undefined,
        position: s ? (JSON.parse(s.value.toString()) as SourcePosition) : undefined,
        namespaces: namespaceLabels,
        objectKeys,
        podsOfChangedNamespaces: podsOfChanged,
      },
      guards: {
        sequenceMod: s ? Number(s.mod_revision) : 0,
        memberMod: m ? Number(m.mod_revision) : 0,
      },
    };
  }
}
