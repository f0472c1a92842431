import * as grpc from '@grpc/grpc-js';
import type { Tracer } from '@opentelemetry/api';
import { MeshError, isMeshError, type ErrorCode } from '../../common/index.js';
import type {
  ListIdentitiesResponse,
  MeshAdminServer,
  StatusResponse,
  JoinClusterResponse,
  RemoveClusterResponse,
} from '../../proto/index.js';
import type { ClusterMembership } from '../ingest/index.js';
import { listIdentities, type IdentityListDeps } from './identities.js';
import { listServices } from './services.js';
import { listEndpoints, listPolicies, tracePolicy, type PolicyViewDeps } from './policy.js';
import { buildSkew, waitForRevision, type SkewDeps } from './skew.js';
import { buildStatus, type StatusDeps } from './status.js';
import { startCallSpan, type CallSpan } from './call-span.js';

export interface AdminDeps extends StatusDeps, IdentityListDeps, PolicyViewDeps, SkewDeps {
  membership: ClusterMembership;
  /**
   * Spans of the calls that change the mesh or wait for it (join, remove,
   * wait), children of the caller's span named in the call's gRPC metadata.
   */
  tracer?: Tracer | undefined;
}

const STATUS_OF: Partial<Record<ErrorCode, grpc.status>> = {
  VALIDATION: grpc.status.INVALID_ARGUMENT,
  CLUSTER_CLASH: grpc.status.ALREADY_EXISTS,
  NOT_FOUND: grpc.status.NOT_FOUND,
  CONFLICT: grpc.status.ABORTED,
};

/** Runs a handler and maps typed errors to gRPC status codes (the CLI maps them to exit codes). */
function unary<Req, Res>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          const code = isMeshError(err)
            ? (STATUS_OF[err.code] ?? grpc.status.UNAVAILABLE)
            : grpc.status.INTERNAL;
          callback({ code, details: err instanceof Error ? err.message : String(err) });
        },
      );
  };
}

/** `fn` inside the call's SERVER span (child of the caller's); the span records its failure. */
async function traced<Res>(
  deps: AdminDeps,
  name: string,
  metadata: grpc.Metadata,
  attributes: Record<string, string | number>,
  fn: (span: CallSpan) => Promise<Res>,
  describe: (res: Res) => Record<string, string | number | boolean>,
): Promise<Res> {
  const s = startCallSpan(deps.tracer, name, metadata, attributes);
  try {
    const res = await fn(s);
    s.span.setAttributes(describe(res));
    s.end();
    return res;
  } catch (err) {
    s.end(err instanceof Error ? err : String(err));
    throw err;
  }
}

/** The admin API meshctl uses. */
export function adminService(deps: AdminDeps): MeshAdminServer {
  return {
    status: unary((): StatusResponse => buildStatus(deps)),
    joinCluster: unary((req, call): Promise<JoinClusterResponse> =>
      traced(
        deps,
        'meshplane.cluster.join',
        call.metadata,
        { 'meshplane.cluster': req.name, 'meshplane.cluster_id': req.id },
        async (span) => {
          // The source's resync carries the call's context: its revision is in this trace.
          const r = await deps.membership.join(req.name, req.id, { traceContext: span.carrier });
          return { member: r.member, revision: r.revision, alreadyMember: r.existed };
        },
        (r) => ({ 'meshplane.revision': r.revision, 'meshplane.already_member': r.alreadyMember }),
      ),
    ),
    removeCluster: unary((req, call): Promise<RemoveClusterResponse> =>
      traced(
        deps,
        'meshplane.cluster.remove',
        call.metadata,
        { 'meshplane.cluster': req.name },
        () => deps.membership.remove(req.name),
        (r) => ({ 'meshplane.revision': r.revision }),
      ),
    ),
    listIdentities: unary((req): Promise<ListIdentitiesResponse> =>
      listIdentities(deps, req.cluster),
    ),
    listEndpoints: unary((req) => listEndpoints(deps, req.cluster)),
    listPolicies: unary(() => listPolicies(deps)),
    listServices: unary(() => listServices(deps.cache)),
    skew: unary(() => buildSkew(deps.tracker, deps.clock.now())),
    wait: (call, callback) => {
      // A long call: stop waiting when the caller goes away.
      const gone = new AbortController();
      call.on('cancelled', () => gone.abort());
      traced(
        deps,
        'meshplane.wait',
        call.metadata,
        { 'meshplane.revision': call.request.revision },
        () => waitForRevision(deps, call.request, { signal: gone.signal }),
        (w) => ({
          'meshplane.synced': w.synced,
          'meshplane.observed_revision': w.observedRevision,
          'meshplane.laggards': w.laggards.length,
        }),
      ).then(
        (res) => callback(null, res),
        (err: unknown) =>
          callback({
            code: grpc.status.INTERNAL,
            details: err instanceof Error ? err.message : String(err),
          }),
      );
    },
    trace: unary((req) => {
      const r = tracePolicy(deps, req);
      if ('error' in r) throw new MeshError('NOT_FOUND', r.error);
      return r;
    }),
  };
}
