import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { MeshError } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';
import type { SourcePosition } from './plan.js';

interface Refusal {
  sequence: number;
  error: string;
  at: string;
}

/**
 * Records that the ingest refused a cluster's change set at `sequence`, for
 * awaitCommitted (any replica may be waiting). Bookkeeping, never a revision.
 */
export async function recordRefusal(
  etcd: Etcd3,
  layout: KeyLayout,
  cluster: string,
  refusal: Refusal,
): Promise<void> {
  await etcd.put(layout.refusedChangeSet(cluster)).value(JSON.stringify(refusal));
}

/**
 * Resolves with the etcd revision that committed the change set at stream
 * `sequence` of `cluster` — the revision of the commit that moved the
 * cluster's source position to it or past it (change sets are folded, so a
 * later commit may carry it). Rejects (VALIDATION) when the ingest refused
 * that change set, and (TIMEOUT) when the signal aborts first. Works on any
 * replica: it watches etcd, not the ingest leader's memory.
 */
export async function awaitCommitted(
  etcd: Etcd3,
  layout: KeyLayout,
  cluster: string,
  sequence: number,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<number> {
  const positionKey = layout.sourceSequence(cluster);
  const refusalKey = layout.refusedChangeSet(cluster);
  const watchers: Watcher[] = [];
  let settle: ((outcome: number | Error) => void) | undefined;
  const outcome = new Promise<number>((resolve, reject) => {
    settle = (o) => (o instanceof Error ? reject(o) : resolve(o));
  });
  // Settled maybe before it is awaited below (an abort during setup): not an unhandled rejection.
  outcome.catch(() => undefined);
  const check = (kv: IKeyValue): void => {
    const key = kv.key.toString();
    if (key === positionKey) {
      const position = JSON.parse(kv.value.toString()) as SourcePosition;
      if (position.sequence >= sequence) settle?.(Number(kv.mod_revision));
    } else if (key === refusalKey) {
      const refusal = JSON.parse(kv.value.toString()) as Refusal;
      if (refusal.sequence === sequence) {
        settle?.(
          new MeshError(
            'VALIDATION',
            `the control plane refused the change set of cluster ${cluster}: ${refusal.error}`,
          ),
        );
      }
    }
  };
  const onAbort = (): void =>
    settle?.(
      new MeshError(
        'TIMEOUT',
        `change set ${sequence} of cluster ${cluster} was not committed in time (is the control plane's ingest running?)`,
      ),
    );
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted) onAbort();
    // Watch first, then read: a commit in between is seen by one or the other.
    for (const key of [positionKey, refusalKey]) {
      const watcher = await etcd.watch().key(key).create();
      watchers.push(watcher);
      watcher.on('put', check);
    }
    const [position, refusal] = await Promise.all([
      etcd.get(positionKey).exec(),
      etcd.get(refusalKey).exec(),
    ]);
    for (const kv of [...position.kvs, ...refusal.kvs]) check(kv);
    return await outcome;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all(watchers.map((w) => w.cancel().catch(() => undefined)));
  }
}
