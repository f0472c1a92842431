import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { AsyncQueue, MeshError } from '../../common/index.js';
import type { KvEvent, RevisionBatch } from './events.js';
import type { KeyLayout } from './keys.js';

/**
 * Reads and watches the mesh-state prefix in etcd (the source of truth).
 * `load` lists everything at one revision; `watch` delivers every later
 * change grouped by the revision that committed it, in order.
 */
export class EtcdMeshStore {
  readonly #client: Etcd3;
  readonly #layout: KeyLayout;

  constructor(client: Etcd3, layout: KeyLayout) {
    this.#client = client;
    this.#layout = layout;
  }

  get layout(): KeyLayout {
    return this.#layout;
  }

  async load(opts: { signal?: AbortSignal } = {}): Promise<RevisionBatch> {
    opts.signal?.throwIfAborted();
    const res = await this.#client.getAll().prefix(this.#layout.mesh).exec();
    return {
      revision: Number(res.header.revision),
      events: res.kvs.map((kv) => ({
        type: 'put' as const,
        key: kv.key.toString(),
        value: kv.value.toString(),
      })),
    };
  }

  /**
   * Every change after `afterRevision`, one batch per etcd revision. The
   * etcd3 watcher reconnects by itself and resumes from the last revision it
   * saw; an unrecoverable watch error (e.g. compaction past our revision)
   * ends the iteration with that error, so the owner reloads. However the
   * iteration ends (abort, error, or the consumer leaving the loop), the etcd
   * watcher is cancelled and nothing stays on `signal`: the owner watches
   * again with the same long-lived signal after every reload.
   */
  async *watch(
    afterRevision: number,
    opts: { signal?: AbortSignal } = {},
  ): AsyncGenerator<RevisionBatch> {
    const signal = opts.signal;
    if (signal?.aborted) return;
    let watcher: Watcher;
    try {
      watcher = await this.#client
        .watch()
        .prefix(this.#layout.mesh)
        .startRevision(String(afterRevision + 1))
        .create();
    } catch (err) {
      throw new MeshError('UNAVAILABLE', 'cannot start etcd watch', { cause: err });
    }
    const queue = new AsyncQueue<RevisionBatch>();
    const stop = (): void => queue.end();
    signal?.addEventListener('abort', stop, { once: true });
    watcher.on('data', (res: IWatchResponse) => {
      for (const batch of groupByRevision(res)) queue.push(batch);
    });
    watcher.on('error', (err: Error) => {
      queue.end(new MeshError('UNAVAILABLE', `etcd watch failed: ${err.message}`, { cause: err }));
    });
    try {
      if (signal?.aborted) return;
      yield* queue;
    } finally {
      signal?.removeEventListener('abort', stop);
      // Not awaited: with etcd away the cancel waits for a reconnect that may never come.
      watcher.cancel().catch(() => undefined);
    }
  }
}

function groupByRevision(res: IWatchResponse): RevisionBatch[] {
  const batches: RevisionBatch[] = [];
  for (const ev of res.events) {
    const kv: IKeyValue = ev.kv;
    const revision = Number(kv.mod_revision);
    const event: KvEvent =
      ev.type === 'Delete'
        ? { type: 'delete', key: kv.key.toString() }
        : { type: 'put', key: kv.key.toString(), value: kv.value.toString() };
    const last = batches.at(-1);
    if (last?.revision === revision) last.events.push(event);
    else batches.push({ revision, events: [event] });
  }
  return batches;
}
