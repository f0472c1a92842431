import * as grpc from '@grpc/grpc-js';
import type { Tracer } from '@opentelemetry/api';
import {
  abortAfter,
  isMeshError,
  parseObjectKey,
  type AbortAfter,
  type ErrorCode,
} from '../../common/index.js';
import { meshPeerOf } from '../../common/tls/index.js';
import type {
  AppliedObject,
  ApplyIssue,
  ApplyRequest,
  ApplyResponse,
  AuditEntry,
  ListHistoryRequest,
  ListHistoryResponse,
  MeshChangeSetsServer,
} from '../../proto/index.js';
import type { AuditLog, AuditRecord } from '../audit/index.js';
import type { ChangeSetApplier, ClusterIssue } from '../changeset/index.js';
import { startCallSpan } from './call-span.js';

export interface ChangeSetServiceDeps {
  applier: ChangeSetApplier;
  audit: AuditLog;
  /** default for a request without timeout_ms */
  defaultTimeoutMs?: number;
  /** spans `meshplane.changeset.apply`/`.delete`, children of the caller's (gRPC metadata) */
  tracer?: Tracer | undefined;
}

// The CLI turns FAILED_PRECONDITION into exit code 3 (the mesh, here a
// cluster's source or the ingest, is unreachable), keeping the message.
const STATUS_OF: Partial<Record<ErrorCode, grpc.status>> = {
  VALIDATION: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  CONFLICT: grpc.status.ABORTED,
  UNAVAILABLE: grpc.status.FAILED_PRECONDITION,
  TIMEOUT: grpc.status.FAILED_PRECONDITION,
};

function fail(err: unknown): grpc.ServiceError {
  const code = isMeshError(err)
    ? (STATUS_OF[err.code] ?? grpc.status.INTERNAL)
    : grpc.status.INTERNAL;
  const details = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/**
 * Who is calling: the SPIFFE id of the verified client certificate (the
 * admin guard has already refused anything but an admin certificate), or the
 * peer address on a plain-text control plane, which has no identities.
 */
function callerOf(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const peer = meshPeerOf(call.getAuthContext());
  return peer?.uri ?? `insecure:${call.getPeer()}`;
}

/** A signal for the call: the request's timeout, or the client going away. */
function callDeadline(call: grpc.ServerUnaryCall<unknown, unknown>, timeoutMs: number): AbortAfter {
  const cancelled = new AbortController();
  call.once('cancelled', () => cancelled.abort(new Error('the client cancelled the call')));
  return abortAfter(timeoutMs, cancelled.signal);
}

function issueMessage(issue: ClusterIssue): ApplyIssue {
  return {
    cluster: issue.cluster ?? '',
    file: issue.file ?? '',
    document: issue.document ?? -1,
    object: issue.object ?? '',
    field: issue.field ?? '',
    message: issue.message,
  };
}

function objectMessage(o: { cluster: string; key: string; action: string }): AppliedObject {
  const ref = parseObjectKey(o.key);
  return {
    cluster: o.cluster,
    kind: ref.kind,
    namespace: ref.namespace,
    name: ref.name,
    action: o.action,
  };
}

function entryMessage(r: AuditRecord): AuditEntry {
  return {
    id: r.id,
    who: r.who,
    atUnixMs: Date.parse(r.at),
    action: r.action,
    status: r.status,
    error: r.error ?? '',
    revision: r.revision,
    clusters: r.clusters,
    objects: r.objects.map(objectMessage),
    files: r.files,
  };
}

/** `meshctl apply` / `delete` / `history`: the MeshChangeSets service. */
export function changeSetService(deps: ChangeSetServiceDeps): MeshChangeSetsServer {
  return {
    apply: (call: grpc.ServerUnaryCall<ApplyRequest, ApplyResponse>, callback) => {
      const req = call.request;
      const { signal, clear } = callDeadline(
        call,
        req.timeoutMs || (deps.defaultTimeoutMs ?? 30_000),
      );
      const mode = req.delete ? 'delete' : 'apply';
      // The caller's trace goes on to each cluster's source (NATS header), into
      // the change set it publishes, and so to the revision and every node's apply.
      const traced = startCallSpan(deps.tracer, `meshplane.changeset.${mode}`, call.metadata, {
        'meshplane.clusters': req.allClusters ? ['*'] : req.clusters,
        'meshplane.files': req.files.length,
      });
      deps.applier
        .apply(
          {
            who: callerOf(call),
            clusters: req.clusters,
            allClusters: req.allClusters,
            files: req.files,
            mode,
            traceContext: traced.carrier,
          },
          { signal },
        )
        .then(
          (out) => {
            clear();
            traced.span.setAttributes(
              out.ok
                ? { 'meshplane.revision': out.revision, 'meshplane.change_set': out.id }
                : { 'meshplane.errors': out.errors.length },
            );
            traced.end(out.ok ? undefined : `${out.errors.length} error(s)`);
            callback(
              null,
              out.ok
                ? {
                    revision: out.revision,
                    errors: [],
                    objects: out.objects.map(objectMessage),
                    changeSetId: out.id,
                    clusters: out.clusters,
                  }
                : {
                    revision: 0,
                    errors: out.errors.map(issueMessage),
                    objects: [],
                    changeSetId: '',
                    clusters: [],
                  },
            );
          },
          (err: unknown) => {
            clear();
            traced.end(err instanceof Error ? err : String(err));
            callback(fail(err));
          },
        );
    },
    listHistory: (
      call: grpc.ServerUnaryCall<ListHistoryRequest, ListHistoryResponse>,
      callback,
    ) => {
      const { cluster, limit } = call.request;
      deps.audit.list({ ...(cluster ? { cluster } : {}), limit: limit || 100 }).then(
        (records) => callback(null, { entries: records.map(entryMessage) }),
        (err: unknown) => callback(fail(err)),
      );
    },
  };
}
