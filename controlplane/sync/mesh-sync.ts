import { sleep, type Clock, type Logger } from '../../common/index.js';
import type { MeshModel } from '../model/index.js';
import type { SnapshotCache } from '../snapshot/index.js';
import { parseMeshKey, type EtcdMeshStore, type KeyLayout, type KvEvent } from '../store/index.js';

/**
 * Keeps the model and the snapshot cache equal to etcd: list once, then
 * watch from the listed revision; each etcd revision becomes a mesh revision
 * if it changes some node's snapshot. If the watch fails for good, list
 * again and fold the difference in (nothing is lost, nothing goes back).
 */
export class MeshSync {
  readonly #store: EtcdMeshStore;
  readonly #model: MeshModel;
  readonly #cache: SnapshotCache;
  readonly #clock: Clock;
  readonly #log: Logger;
  #revision = 0;
  #ready: Promise<void>;
  #resolveReady!: () => void;

  constructor(
    store: EtcdMeshStore,
    model: MeshModel,
    cache: SnapshotCache,
    clock: Clock,
    log: Logger,
  ) {
    this.#store = store;
    this.#model = model;
    this.#cache = cache;
    this.#clock = clock;
    this.#log = log;
    this.#ready = new Promise((r) => (this.#resolveReady = r));
  }

  /** Resolves after the first listing has been folded in. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** The etcd revision the model reflects. */
  get revision(): number {
    return this.#revision;
  }

  async run(signal: AbortSignal): Promise<void> {
    let first = true;
    while (!signal.aborted) {
      try {
        const listing = await this.#store.load({ signal });
        const change = first
          ? this.#model.apply(listing.events)
          : this.#model.reset(listing.events);
        this.#revision = listing.revision;
        this.#cache.update(listing.revision, this.#clock.now(), this.#model, change);
        if (first) this.#resolveReady();
        first = false;
        for await (const batch of this.#store.watch(listing.revision, { signal })) {
          const c = this.#model.apply(batch.events);
          this.#revision = batch.revision;
          this.#cache.update(
            batch.revision,
            this.#clock.now(),
            this.#model,
            c,
            traceparentsOf(this.#store.layout, batch.events),
          );
        }
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn('etcd listing or watch failed; retrying', {
          error: err instanceof Error ? err.message : String(err),
        });
        await sleep(500, signal).catch(() => undefined);
      }
    }
  }
}

/** The traceparents the ingest leader wrote with the source positions of this revision. */
function traceparentsOf(layout: KeyLayout, events: readonly KvEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type !== 'put' || parseMeshKey(layout, e.key).type !== 'source-seq') continue;
    try {
      const v = JSON.parse(e.value) as { traceparents?: unknown };
      if (Array.isArray(v.traceparents))
        for (const t of v.traceparents) if (typeof t === 'string') out.push(t);
    } catch {
      // not ours to judge here: the model reports malformed keys
    }
  }
  return out;
}
