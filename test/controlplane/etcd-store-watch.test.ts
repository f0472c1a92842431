// EtcdMeshStore.watch against a real etcd: batches per revision, and however
// the iteration ends (the consumer leaving the loop, an abort, an
// unrecoverable watch error) the etcd watcher is gone — etcd's own watcher
// gauge says so — and no listener stays on the caller's long-lived signal.
import { getEventListeners } from 'node:events';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshError } from '../../common/index.js';
import { EtcdMeshStore, keyLayout, type RevisionBatch } from '../../controlplane/store/index.js';
import { useInfra, waitFor } from '../harness/index.js';

describe('EtcdMeshStore.watch (real etcd)', () => {
  const infra = useInfra();
  let client: Etcd3;
  let store: EtcdMeshStore;
  beforeAll(() => {
    client = new Etcd3({ hosts: infra.etcd.endpoint });
    store = new EtcdMeshStore(client, keyLayout());
  });
  afterAll(() => client?.close());

  /** etcd's count of open watchers (its Prometheus gauge). */
  const watchers = async (): Promise<number> => {
    const text = await (await fetch(`${infra.etcd.endpoint}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
    if (line === undefined)
      throw new Error('etcd /metrics has no etcd_debugging_mvcc_watcher_total');
    return Number(line.split(' ')[1]);
  };
  const put = (name: string, value: string) =>
    client.put(`${keyLayout().mesh}test-watch/${name}`).value(value);

  it('a consumer that leaves the loop cancels the etcd watcher', async () => {
    const before = await watchers();
    const signal = new AbortController().signal;
    const { revision } = await store.load();
    const it = store.watch(revision, { signal })[Symbol.asyncIterator]();
    const first = it.next();
    await waitFor('the watcher to open', async () => (await watchers()) === before + 1);
    await put('a', '1');
    const batch = (await first).value as RevisionBatch;
    expect(batch.events).toEqual([
      { type: 'put', key: `${keyLayout().mesh}test-watch/a`, value: '1' },
    ]);
    await it.return?.(undefined);
    await waitFor('the watcher to close', async () => (await watchers()) === before);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('an abort ends the iteration and cancels the watcher', async () => {
    const before = await watchers();
    const stop = new AbortController();
    const { revision } = await store.load();
    const seen: RevisionBatch[] = [];
    const done = (async () => {
      for await (const b of store.watch(revision, { signal: stop.signal })) seen.push(b);
    })();
    await waitFor('the watcher to open', async () => (await watchers()) === before + 1);
    stop.abort();
    await done;
    expect(seen).toEqual([]);
    await waitFor('the watcher to close', async () => (await watchers()) === before);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('a watch from a compacted revision fails with UNAVAILABLE and leaves nothing behind', async () => {
    await put('b', '1');
    const { revision } = await store.load();
    await put('b', '2');
    await put('b', '3');
    await client.kv.compact({ revision: String(revision + 2), physical: true });
    const before = await watchers();
    const signal = new AbortController().signal;
    const err = await (async () => {
      for await (const _ of store.watch(revision - 1, { signal })) void _;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe('UNAVAILABLE');
    expect((err as MeshError).message).toMatch(/etcd watch failed/);
    await waitFor('no watcher left', async () => (await watchers()) === before);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});
