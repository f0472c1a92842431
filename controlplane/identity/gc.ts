import type { Etcd3 } from 'etcd3';
import { sleep, type Clock, type Logger } from '../../common/index.js';
import { runWhileLeader } from '../election/index.js';
import type { KeyLayout } from '../store/index.js';
import { planGc, type GcCandidate } from './gc-plan.js';

/** What the collector needs to know about the mesh (the control plane's model). */
export interface GcView {
  /** the etcd revision the view reflects */
  revision(): number;
  identities(): Iterable<{ id: number; cluster: string; hash: string }>;
  references(id: number): number;
  /** member clusters (a CIDR deletion requires none committed a change set after the view) */
  clusters(): readonly { name: string }[];
  /** prefix -> CIDR identity */
  cidrIdentities(): ReadonlyMap<string, number>;
  /** prefixes some policy names now */
  cidrPrefixesInUse(): ReadonlySet<string>;
}

export interface IdentityGcOptions {
  /** unused this long before deletion (default 15 min) */
  graceMs?: number;
  /** how often to look (default 30 s) */
  intervalMs?: number;
  /** deletions per round at most (rate limit; default 100) */
  maxPerRound?: number;
  onCollected?: (n: number) => void;
}

/**
 * Garbage collection of identities no endpoint holds. One replica runs it,
 * elected through an etcd lease (a replica that dies loses the lease and
 * another takes over). Marks unused identities in bookkeeping, deletes those
 * unused for the grace period — rate-limited — and records the released
 * number so the allocator does not reuse it within the grace period.
 * A deletion only commits if no change set of that cluster was committed
 * after the revision the collector's view reflects, so an endpoint that just
 * took the identity is never left pointing at a deleted one.
 */
export class IdentityGc {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;
  readonly #view: GcView;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #intervalMs: number;
  readonly #maxPerRound: number;
  readonly #onCollected: (n: number) => void;
  #leader = false;

  constructor(
    etcd: Etcd3,
    layout: KeyLayout,
    view: GcView,
    clock: Clock,
    log: Logger,
    opts: IdentityGcOptions = {},
  ) {
    this.#etcd = etcd;
    this.#layout = layout;
    this.#view = view;
    this.#clock = clock;
    this.#log = log;
    this.#graceMs = opts.graceMs ?? 15 * 60_000;
    this.#intervalMs = opts.intervalMs ?? 30_000;
    this.#maxPerRound = opts.maxPerRound ?? 100;
    this.#onCollected = opts.onCollected ?? (() => undefined);
  }

  get leader(): boolean {
    return this.#leader;
  }

  /** Campaigns for leadership and collects while leader, until the signal aborts. */
  async run(candidate: string, signal: AbortSignal): Promise<void> {
    await runWhileLeader(
      this.#etcd.namespace(this.#layout.bookkeeping),
      this.#layout.gcElection,
      candidate,
      signal,
      this.#log,
      async (leadership) => {
        while (!leadership.aborted) {
          await this.round().catch((err: unknown) =>
            this.#log.warn('identity GC round failed', {
              error: err instanceof Error ? err.message : String(err),
            }),
          );
          await sleep(this.#intervalMs, leadership).catch(() => undefined);
        }
      },
      { onLeadership: (l) => (this.#leader = l) },
    );
  }

  /** One pass: mark, unmark and collect. Exposed so tests can drive rounds. */
  async round(): Promise<{ marked: number; collected: number }> {
    const L = this.#layout;
    const revision = this.#view.revision();
    const marks = await this.#etcd.getAll().prefix(`${L.bookkeeping}identity-unused/`).strings();
    const unusedSince = new Map<string, number>();
    for (const [k, v] of Object.entries(marks)) unusedSince.set(k, Number(v));
    const candidates: (GcCandidate & { hash: string })[] = [];
    const live = new Set<string>();
    for (const i of this.#view.identities()) {
      const key = L.identityUnused(i.cluster, i.id);
      live.add(key);
      candidates.push({
        id: i.id,
        cluster: i.cluster,
        hash: i.hash,
        references: this.#view.references(i.id),
        unusedSince: unusedSince.get(key),
      });
    }
    const now = this.#clock.now();
    const plan = planGc(candidates, now, this.#graceMs, this.#maxPerRound);
    for (const c of plan.mark)
      await this.#etcd.put(L.identityUnused(c.cluster, c.id)).value(String(now));
    for (const c of plan.unmark) await this.#etcd.delete().key(L.identityUnused(c.cluster, c.id));
    // Marks of identities that no longer exist (deleted, or their cluster removed).
    for (const k of unusedSince.keys()) if (!live.has(k)) await this.#etcd.delete().key(k);
    let collected = 0;
    for (const c of plan.collect as (GcCandidate & { hash: string })[]) {
      const res = await this.#etcd
        .if(L.sourceSequence(c.cluster), 'Mod', '<', revision + 1)
        .and(L.identityById(c.cluster, c.id), 'Mod', '<', revision + 1)
        .then(
          this.#etcd.delete().key(L.identityByLabels(c.cluster, c.hash)),
          this.#etcd.delete().key(L.identityById(c.cluster, c.id)),
          this.#etcd.delete().key(L.identityUnused(c.cluster, c.id)),
          this.#etcd.put(L.identityReleased(c.cluster, c.id & 0xffff)).value(String(now)),
        )
        .commit();
      if (res.succeeded) collected += 1;
    }
    collected += await this.#cidrRound(revision, now);
    if (collected > 0) {
      this.#log.info('identity GC: collected', { collected });
      this.#onCollected(collected);
    }
    return { marked: plan.mark.length, collected };
  }

  /**
   * CIDR identities are referenced by the policies that name their prefix:
   * unused ones are marked, and deleted after the grace period unless a
   * change set (which may add such a policy) was committed after the view.
   */
  async #cidrRound(revision: number, now: number): Promise<number> {
    const L = this.#layout;
    const inUse = this.#view.cidrPrefixesInUse();
    const marks = await this.#etcd.getAll().prefix(`${L.bookkeeping}cidr-unused/`).strings();
    let collected = 0;
    for (const [prefix, id] of this.#view.cidrIdentities()) {
      const mark = L.cidrUnused(prefix);
      const since = marks[mark] === undefined ? undefined : Number(marks[mark]);
      if (inUse.has(prefix)) {
        if (since !== undefined) await this.#etcd.delete().key(mark);
        continue;
      }
      if (since === undefined) {
        await this.#etcd.put(mark).value(String(now));
        continue;
      }
      if (now - since < this.#graceMs || collected >= this.#maxPerRound) continue;
      let txn = this.#etcd.if(L.cidrIdentity(prefix), 'Mod', '<', revision + 1);
      for (const c of this.#view.clusters())
        txn = txn.and(L.sourceSequence(c.name), 'Mod', '<', revision + 1);
      const res = await txn
        .then(this.#etcd.delete().key(L.cidrIdentity(prefix)), this.#etcd.delete().key(mark))
        .commit();
      if (res.succeeded) {
        collected += 1;
        this.#log.info('identity GC: CIDR identity collected', { prefix, id });
      }
    }
    return collected;
  }
}
