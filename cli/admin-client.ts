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
} from '../proto/index.js';
import { adminTransport } from './admin-tls.js';
import { CliExit, EXIT } from './exit-codes.js';

type Unary<Req, Res> = (
  req: Req,
  meta: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/**
 * One admin call. An unreachable control plane is exit code 3; a refusal
 * (validation, clash, not found) is exit code 2 with the server's message.
 */
async function call<Req, Res>(
  address: string,
  pick: (c: MeshAdminClient) => Unary<Req, Res>,
  req: Req,
  timeoutMs = 10_000,
): Promise<Res> {
  // The admin certificate of the state dir (mTLS), or plain text for an --insecure mesh.
  const transport = await adminTransport();
  const client = new MeshAdminClient(address, transport.credentials, transport.options);
  try {
    return await new Promise<Res>((resolve, reject) => {
      pick(client).call(
        client,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res)),
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

export const fetchStatus = (address: string): Promise<StatusResponse> =>
  call(
    address,
    (c) => c.status.bind(c) as Unary<StatusRequest, StatusResponse>,
    StatusRequest.create(),
  );

export const joinCluster = (
  address: string,
  name: string,
  id: number,
): Promise<JoinClusterResponse> =>
  call(
    address,
    (c) => c.joinCluster.bind(c) as Unary<{ name: string; id: number }, JoinClusterResponse>,
    {
      name,
      id,
    },
  );

export const removeCluster = (address: string, name: string): Promise<RemoveClusterResponse> =>
  call(address, (c) => c.removeCluster.bind(c) as Unary<{ name: string }, RemoveClusterResponse>, {
    name,
  });

export const listIdentities = (address: string, cluster: string): Promise<ListIdentitiesResponse> =>
  call(
    address,
    (c) => c.listIdentities.bind(c) as Unary<{ cluster: string }, ListIdentitiesResponse>,
    {
      cluster,
    },
  );

export const listEndpoints = (address: string, cluster: string): Promise<ListEndpointsResponse> =>
  call(
    address,
    (c) => c.listEndpoints.bind(c) as Unary<{ cluster: string }, ListEndpointsResponse>,
    { cluster },
  );

export const listPolicies = (address: string): Promise<ListPoliciesResponse> =>
  call(
    address,
    (c) => c.listPolicies.bind(c) as Unary<Record<string, never>, ListPoliciesResponse>,
    {},
  );

export const tracePolicy = (address: string, req: TraceRequest): Promise<TraceResponse> =>
  call(address, (c) => c.trace.bind(c) as Unary<TraceRequest, TraceResponse>, req);

export const listServices = (address: string): Promise<ListServicesResponse> =>
  call(
    address,
    (c) => c.listServices.bind(c) as Unary<Record<string, never>, ListServicesResponse>,
    {},
  );
