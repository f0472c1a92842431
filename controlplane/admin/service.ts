import * as grpc from '@grpc/grpc-js';
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

export interface AdminDeps extends StatusDeps, IdentityListDeps, PolicyViewDeps, SkewDeps {
  membership: ClusterMembership;
}

const STATUS_OF: Partial<Record<ErrorCode, grpc.status>> = {
  VALIDATION: grpc.status.INVALID_ARGUMENT,
  CLUSTER_CLASH: grpc.status.ALREADY_EXISTS,
  NOT_FOUND: grpc.status.NOT_FOUND,
  CONFLICT: grpc.status.ABORTED,
};

/** Runs a handler and maps typed errors to gRPC status codes (the CLI maps them to exit codes). */
function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
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

/** The admin API meshctl uses. */
export function adminService(deps: AdminDeps): MeshAdminServer {
  return {
    status: unary((): StatusResponse => buildStatus(deps)),
    joinCluster: unary(async (req): Promise<JoinClusterResponse> => {
      const r = await deps.membership.join(req.name, req.id);
      return { member: r.member, revision: r.revision, alreadyMember: r.existed };
    }),
    removeCluster: unary(async (req): Promise<RemoveClusterResponse> =>
      deps.membership.remove(req.name),
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
      waitForRevision(deps, call.request, { signal: gone.signal }).then(
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
