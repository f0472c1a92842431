/** One etcd key change, as the watch delivers it (values decoded as UTF-8). */
export type KvEvent = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string };

/** All changes committed at one etcd revision. */
export interface RevisionBatch {
  revision: number;
  events: KvEvent[];
}
