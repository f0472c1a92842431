import * as grpc from '@grpc/grpc-js';
import {
  MeshAdminClient,
  StatusRequest,
  type JoinClusterResponse,
  type ListEndpointsResponse,
  type ListPoliciesResponse,
  type ListServicesResponse,
  type TraceRequest,
  type TraceResponse,
  type ListIdentitiesResponse,
  type RemoveClusterResponse,
  type StatusResponse,
  SkewRequest,
  type SkewResponse,
  type WaitRequest,
  type WaitResponse,
} from '../proto/index.js';
import { adminTransport } from './admin-tls.js';
import type { MeshTarget } from './state-dir.js';
import { CliExit, EXIT } from './exit-codes.js';

type Unary<Req, Res> = (
  req: Req,
  meta: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/** For calls that change the mesh or wait for it: metadata carrying the command span's trace context. */
export interface TracedCallOptions {
  metadata?: grpc.Metadata;
}

/**
 * One admin call. An unreachable control plane is exit code 3; a refusal
 * (validation, clash, not found) is exit code 2 with the server's message.
 */
async function call<Req, Res>(
  target: MeshTarget,
  pick: (c: MeshAdminClient) => Unary<Req, Res>,
  req: Req,
  timeoutMs = 10_000,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Res> {
  // The admin certificate of the state dir (mTLS), or plain text for an --insecure mesh.
  const transport = await adminTransport(target.stateDir);
  const address = target.address;
  const client = new MeshAdminClient(address, transport.credentials, transport.options);
  try {
    return await new Promise<Res>((resolve, reject) => {
      pick(client).call(client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
      const plain = transport.plainTextBecause;
      throw new CliExit(
        EXIT.unreachable,
        `control plane at ${address} is unreachable: ${e.details || e.message}${plain ? ` (meshctl spoke plain text: ${plain})` : ''}`,
      );
    }
    if (
      e.code === grpc.status.INVALID_ARGUMENT ||
      e.code === grpc.status.ALREADY_EXISTS ||
      e.code === grpc.status.NOT_FOUND
    ) {
      throw new CliExit(EXIT.usage, e.details);
    }
    if (e.code === grpc.status.PERMISSION_DENIED || e.code === grpc.status.UNAUTHENTICATED) {
      throw new CliExit(EXIT.usage, `control plane at ${address} refused: ${e.details}`);
    }
    throw err;
  } finally {
    client.close();
  }
}

export const fetchStatus = (target: MeshTarget): Promise<StatusResponse> =>
  call(
    target,
    (c) => c.status.bind(c) as Unary<StatusRequest, StatusResponse>,
    StatusRequest.create(),
  );

export const joinCluster = (
  target: MeshTarget,
  name: string,
  id: number,
  opts: TracedCallOptions = {},
): Promise<JoinClusterResponse> =>
  call(
    target,
    (c) => c.joinCluster.bind(c) as Unary<{ name: string; id: number }, JoinClusterResponse>,
    { name, id },
    undefined,
    opts.metadata,
  );

export const removeCluster = (
  target: MeshTarget,
  name: string,
  opts: TracedCallOptions = {},
): Promise<RemoveClusterResponse> =>
  call(
    target,
    (c) => c.removeCluster.bind(c) as Unary<{ name: string }, RemoveClusterResponse>,
    { name },
    undefined,
    opts.metadata,
  );

export const listIdentities = (
  target: MeshTarget,
  cluster: string,
): Promise<ListIdentitiesResponse> =>
  call(
    target,
    (c) => c.listIdentities.bind(c) as Unary<{ cluster: string }, ListIdentitiesResponse>,
    {
      cluster,
    },
  );

export const listEndpoints = (
  target: MeshTarget,
  cluster: string,
): Promise<ListEndpointsResponse> =>
  call(
    target,
    (c) => c.listEndpoints.bind(c) as Unary<{ cluster: string }, ListEndpointsResponse>,
    { cluster },
  );

export const listPolicies = (target: MeshTarget): Promise<ListPoliciesResponse> =>
  call(
    target,
    (c) => c.listPolicies.bind(c) as Unary<Record<string, never>, ListPoliciesResponse>,
    {},
  );

export const tracePolicy = (target: MeshTarget, req: TraceRequest): Promise<TraceResponse> =>
  call(target, (c) => c.trace.bind(c) as Unary<TraceRequest, TraceResponse>, req);

export const listServices = (target: MeshTarget): Promise<ListServicesResponse> =>
  call(
    target,
    (c) => c.listServices.bind(c) as Unary<Record<string, never>, ListServicesResponse>,
    {},
  );

export const fetchSkew = (target: MeshTarget): Promise<SkewResponse> =>
  call(target, (c) => c.skew.bind(c) as Unary<SkewRequest, SkewResponse>, SkewRequest.create());

/** Waits server-side; the call's own deadline is the wait's timeout plus a margin. */
export const waitRevision = (
  target: MeshTarget,
  req: WaitRequest,
  opts: TracedCallOptions = {},
): Promise<WaitResponse> =>
  call(
    target,
    (c) => c.wait.bind(c) as Unary<WaitRequest, WaitResponse>,
    req,
    req.timeoutMs + 15_000,
    opts.metadata,
  );
