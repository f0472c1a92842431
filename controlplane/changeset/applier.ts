import type {
  AppliedObjectRef,
  ChangeSetFile,
  Clock,
  Logger,
  SourceApplyReply,
  SourceApplyRequest,
  ValidationIssue,
} from '../../common/index.js';
import { MeshError, formatIssue, isMeshError } from '../../common/index.js';
import type { AuditLog, AuditRecord, AuditedCluster } from '../audit/index.js';

/** The cluster sources that hold change sets' folders (the NATS adapter is natsClusterSources). */
export interface ClusterSources {
  /** UNAVAILABLE when the cluster's source is not connected; TIMEOUT when the signal aborts first. */
  request(
    cluster: string,
    request: SourceApplyRequest,
    opts?: {
      signal?: AbortSignal | undefined;
      timeoutMs?: number;
      /** W3C trace context (`traceparent`, `tracestate`) to send with the request */
      traceContext?: Record<string, string> | undefined;
    },
  ): Promise<SourceApplyReply>;
}

export interface ChangeSetApplierDeps {
  sources: ClusterSources;
  /** the etcd revision that committed `sequence` of `cluster` (see ingest's awaitCommitted) */
  awaitCommitted(
    cluster: string,
    sequence: number,
    opts: { signal?: AbortSignal | undefined },
  ): Promise<number>;
  audit: AuditLog;
  /** names of the member clusters */
  members(): string[];
  /** the latest mesh revision this replica knows */
  latestRevision(): number;
  clock: Clock;
  newId(): string;
  log: Logger;
}

export interface ChangeSetInput {
  /** the caller's identity, as the audit trail names it */
  who: string;
  /** empty with allClusters false: the mesh's only cluster */
  clusters: readonly string[];
  allClusters: boolean;
  files: readonly ChangeSetFile[];
  mode: 'apply' | 'delete';
  /**
   * The caller's W3C trace context: sent to each cluster's source, which
   * publishes the change set with it, so the revision is in the caller's trace.
   */
  traceContext?: Record<string, string> | undefined;
}

export interface ClusterIssue extends ValidationIssue {
  /** absent when the issue is the same for every target cluster */
  cluster?: string;
}

export type ChangeSetOutcome =
  | {
      ok: true;
      id: string;
      /** the revision to wait for: the highest commit revision of its clusters */
      revision: number;
      clusters: AuditedCluster[];
      objects: { cluster: string; key: string; action: AppliedObjectRef['action'] }[];
    }
  | { ok: false; errors: ClusterIssue[] };

/**
 * `meshctl apply` / `delete` on the control plane side: picks the target
 * clusters, has each cluster's source validate the change set against its
 * folder and write it (the folder stays the source of truth), waits until
 * each cluster's change set is committed, and keeps an audit record of who
 * did it, when, and at which revision.
 *
 * All or nothing per cluster: a source writes nothing unless the whole
 * change set is valid there, and its change set is committed in one etcd
 * transaction. Across clusters (`--all-clusters`) every source validates
 * first (dry run) and nothing is written anywhere unless all pass; a cluster
 * whose folder changes between that check and the write is reported.
 */
export class ChangeSetApplier {
  readonly #deps: ChangeSetApplierDeps;

  constructor(deps: ChangeSetApplierDeps) {
    this.#deps = deps;
  }

  async apply(
    input: ChangeSetInput,
    opts: { signal?: AbortSignal | undefined } = {},
  ): Promise<ChangeSetOutcome> {
    const targets = this.#targets(input);
    if ('errors' in targets) return { ok: false, errors: targets.errors };
    const id = this.#deps.newId();
    const base = { apiVersion: 'meshplane/v1' as const, id, mode: input.mode, files: input.files };
    const record: AuditRecord = {
      id,
      who: input.who,
      at: new Date(this.#deps.clock.now()).toISOString(),
      action: input.mode,
      status: 'pending',
      revision: 0,
      clusters: targets.clusters.map((cluster) => ({
        cluster,
        revision: 0,
        sequence: 0,
        unchanged: false,
      })),
      objects: [],
      files: input.files.map((f) => f.path),
    };
    // Every attempt is on record, before anything is written: a crash from
    // here on still leaves who tried what; the status says what came of it.
    await this.#deps.audit.record(record, signalOpts(opts.signal));
    try {
      const outcome = await this.#checkThenWrite(
        targets.clusters,
        base,
        opts.signal,
        input.traceContext,
      );
      await this.#deps.audit.record(
        outcome.ok
          ? {
              ...record,
              status: 'committed',
              revision: outcome.revision,
              clusters: outcome.clusters,
              objects: outcome.objects,
            }
          : { ...record, status: 'failed', error: outcome.errors.map(formatIssue).join('\n') },
      );
      return outcome;
    } catch (err) {
      await this.#deps.audit
        .record({
          ...record,
          status: 'failed',
          error: err instanceof Error ? err.message : String(err),
        })
        .catch((e: unknown) =>
          this.#deps.log.error('audit record not written', { id, error: String(e) }),
        );
      throw err;
    }
  }

  #targets(input: ChangeSetInput): { clusters: string[] } | { errors: ClusterIssue[] } {
    const members = this.#deps.members().sort();
    const refuse = (message: string) => ({ errors: [{ message, severity: 'error' as const }] });
    if (members.length === 0) return refuse('the mesh has no member clusters');
    if (input.allClusters) {
      if (input.clusters.length > 0)
        return refuse('name clusters or ask for all of them, not both');
      return { clusters: members };
    }
    if (input.clusters.length === 0) {
      if (members.length === 1) return { clusters: members };
      return refuse(
        `the mesh has ${members.length} clusters (${members.join(', ')}): name one with --cluster, or use --all-clusters`,
      );
    }
    const unknown = input.clusters.filter((c) => !members.includes(c));
    if (unknown.length > 0) {
      return refuse(`not a member cluster: ${unknown.join(', ')} (members: ${members.join(', ')})`);
    }
    return { clusters: [...new Set(input.clusters)].sort() };
  }

  async #checkThenWrite(
    clusters: readonly string[],
    base: Omit<SourceApplyRequest, 'dryRun'>,
    signal: AbortSignal | undefined,
    traceContext: Record<string, string> | undefined,
  ): Promise<ChangeSetOutcome> {
    if (clusters.length > 1) {
      const checked = await this.#askAll(clusters, { ...base, dryRun: true }, signal);
      const errors = collectErrors(checked);
      if (errors.length > 0) return { ok: false, errors };
    }
    return this.#write(clusters, { ...base, dryRun: false }, signal, traceContext);
  }

  async #askAll(
    clusters: readonly string[],
    request: SourceApplyRequest,
    signal: AbortSignal | undefined,
  ): Promise<Map<string, SourceApplyReply>> {
    const replies = await Promise.all(
      clusters.map(
        async (c) => [c, await this.#deps.sources.request(c, request, { signal })] as const,
      ),
    );
    return new Map(replies);
  }

  async #write(
    clusters: readonly string[],
    request: SourceApplyRequest,
    signal: AbortSignal | undefined,
    traceContext: Record<string, string> | undefined,
  ): Promise<ChangeSetOutcome> {
    const settled = await Promise.allSettled(
      clusters.map(async (cluster) => {
        const reply = await this.#deps.sources.request(cluster, request, { signal, traceContext });
        if (!reply.ok) return { cluster, reply };
        const committed =
          reply.sequence === undefined
            ? 0
            : await this.#deps
                .awaitCommitted(cluster, reply.sequence, { signal })
                .catch((err: unknown) => {
                  // Written, but the ingest refused it (e.g. a pod IP another cluster has).
                  if (!isMeshError(err, 'VALIDATION')) throw err;
                  throw new MeshError(
                    'VALIDATION',
                    `${err.message}. The change set is in cluster ${cluster}'s folder, but the mesh keeps its previous state: fix or delete it there`,
                    { cause: err },
                  );
                });
        // Nothing new: the revision now in force (at least the one that committed the folder's state).
        const revision = reply.unchanged
          ? Math.max(committed, this.#deps.latestRevision())
          : committed;
        return { cluster, reply, revision };
      }),
    );
    const done: AuditedCluster[] = [];
    const objects: { cluster: string; key: string; action: AppliedObjectRef['action'] }[] = [];
    const errors: ClusterIssue[] = [];
    const failures: unknown[] = [];
    settled.forEach((s, i) => {
      const cluster = clusters[i]!;
      if (s.status === 'rejected') {
        failures.push(s.reason);
        return;
      }
      const { reply } = s.value;
      if (!reply.ok) {
        for (const e of reply.errors) errors.push(clusters.length > 1 ? { ...e, cluster } : e);
        return;
      }
      done.push({
        cluster,
        revision: s.value.revision ?? 0,
        sequence: reply.sequence ?? 0,
        unchanged: reply.unchanged,
      });
      for (const o of reply.objects) objects.push({ cluster, key: o.key, action: o.action });
    });
    if (failures.length === 0 && errors.length === 0) {
      const revision = Math.max(...done.map((d) => d.revision));
      return { ok: true, id: request.id, revision, clusters: done, objects };
    }
    if (done.length > 0) {
      errors.push({
        message: `applied only to ${done.map((d) => `${d.cluster} (revision ${d.revision})`).join(', ')}: its folder changed between validation and writing, or its source failed`,
        severity: 'error',
      });
    }
    if (failures.length > 0 && errors.length === 0 && done.length === 0) throw failures[0];
    for (const f of failures) {
      errors.push({ message: f instanceof Error ? f.message : String(f), severity: 'error' });
    }
    return { ok: false, errors };
  }
}

/** Every error of every cluster; one that is the same everywhere is reported once, without a cluster. */
function collectErrors(replies: ReadonlyMap<string, SourceApplyReply>): ClusterIssue[] {
  const byText = new Map<string, { issue: ValidationIssue; clusters: string[] }>();
  for (const [cluster, reply] of replies) {
    if (reply.ok) continue;
    for (const issue of reply.errors) {
      if (issue.severity !== 'error') continue;
      const text = formatIssue(issue);
      const entry = byText.get(text) ?? { issue, clusters: [] };
      entry.clusters.push(cluster);
      byText.set(text, entry);
    }
  }
  const errors: ClusterIssue[] = [];
  for (const { issue, clusters } of byText.values()) {
    if (clusters.length === replies.size) errors.push(issue);
    else for (const cluster of clusters) errors.push({ ...issue, cluster });
  }
  return errors;
}

function signalOpts(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}
