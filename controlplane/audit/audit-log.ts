import type { Etcd3 } from 'etcd3';
import type { AppliedAction } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';

/** One cluster's part of a change set. */
export interface AuditedCluster {
  cluster: string;
  /** etcd revision that committed it (0 while pending or when it failed) */
  revision: number;
  /** its position in the events stream (0 when none) */
  sequence: number;
  unchanged: boolean;
}

/**
 * Who changed what, when, and at which revision: one record per `meshctl
 * apply` / `delete`, written before the change is made (`pending`) and
 * completed after it was committed or failed, so a crash in between still
 * leaves a trace of the attempt.
 */
export interface AuditRecord {
  /** the change set id */
  id: string;
  /** the client certificate's SPIFFE id (`insecure:<peer>` on a plain-text control plane) */
  who: string;
  /** when it was requested, ISO 8601 */
  at: string;
  action: 'apply' | 'delete';
  status: 'pending' | 'committed' | 'failed';
  /** the revision to wait for (the highest of its clusters'); 0 unless committed */
  revision: number;
  clusters: AuditedCluster[];
  objects: { cluster: string; key: string; action: AppliedAction }[];
  /** the files as the user named them */
  files: string[];
  /** why it failed */
  error?: string;
}

/** The audit trail as the change-set applier uses it. Records are owned by the caller once returned. */
export interface AuditLog {
  /** Writes (or rewrites) a record. Idempotent per id. */
  record(entry: AuditRecord, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Newest first; `cluster` keeps the records touching it. */
  list(opts?: { cluster?: string; limit?: number; signal?: AbortSignal }): Promise<AuditRecord[]>;
}

/**
 * The audit trail in etcd under the bookkeeping prefix (`/meshplane/book/audit/`),
 * so writing it is never a mesh revision. Keys sort by request time.
 */
export class EtcdAuditLog implements AuditLog {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;

  constructor(etcd: Etcd3, layout: KeyLayout) {
    this.#etcd = etcd;
    this.#layout = layout;
  }

  async record(entry: AuditRecord): Promise<void> {
    const at = String(Date.parse(entry.at)).padStart(15, '0');
    await this.#etcd
      .put(`${this.#layout.auditEntries}${at}-${entry.id}`)
      .value(JSON.stringify(entry));
  }

  async list(opts: { cluster?: string; limit?: number } = {}): Promise<AuditRecord[]> {
    const limit = opts.limit ?? 100;
    let query = this.#etcd.getAll().prefix(this.#layout.auditEntries).sort('Key', 'Descend');
    // Filtering by cluster happens here, so only an unfiltered list can be cut short by etcd.
    if (opts.cluster === undefined) query = query.limit(limit);
    const values = await query.strings();
    const records = Object.entries(values)
      .sort(([a], [b]) => (a < b ? 1 : -1))
      .map(([, v]) => JSON.parse(v) as AuditRecord);
    const cluster = opts.cluster;
    return (
      cluster === undefined
        ? records
        : records.filter((r) => r.clusters.some((c) => c.cluster === cluster))
    ).slice(0, limit);
  }
}
