import * as grpc from '@grpc/grpc-js';
import {
  MeshChangeSetsClient,
  type ApplyRequest,
  type ApplyResponse,
  type ListHistoryRequest,
  type ListHistoryResponse,
} from '../proto/index.js';
import { adminTransport } from './admin-tls.js';
import { CliExit, EXIT } from './exit-codes.js';
import type { MeshTarget } from './state-dir.js';

/**
 * One call of the MeshChangeSets service with the state dir's admin
 * certificate. Exit codes: the control plane, a cluster's source or the
 * ingest unreachable (or not answering in time) → 3; refused (no admin
 * certificate, validation, conflict) → 2. Validation errors of a change set
 * come back in the response, not here.
 */
async function callChangeSets<Req, Res>(
  target: MeshTarget,
  method: 'apply' | 'listHistory',
  req: Req,
  timeoutMs: number,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Res> {
  const transport = await adminTransport(target.stateDir);
  const client = new MeshChangeSetsClient(target.address, transport.credentials, transport.options);
  try {
    return await new Promise<Res>((resolve, reject) => {
      const fn = client[method].bind(client) as unknown as (
        req: Req,
        meta: grpc.Metadata,
        opts: Partial<grpc.CallOptions>,
        cb: (err: grpc.ServiceError | null, res: Res) => void,
      ) => grpc.ClientUnaryCall;
      fn(req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  } catch (err) {
    const e = err as grpc.ServiceError;
    switch (e.code) {
      case grpc.status.UNAVAILABLE:
      case grpc.status.DEADLINE_EXCEEDED: {
        const plain = transport.plainTextBecause;
        throw new CliExit(
          EXIT.unreachable,
          `control plane at ${target.address} is unreachable: ${e.details || e.message}${plain ? ` (meshctl spoke plain text: ${plain})` : ''}`,
        );
      }
      case grpc.status.FAILED_PRECONDITION:
        throw new CliExit(EXIT.unreachable, e.details);
      case grpc.status.PERMISSION_DENIED:
      case grpc.status.UNAUTHENTICATED:
        throw new CliExit(EXIT.usage, `control plane at ${target.address} refused: ${e.details}`);
      case grpc.status.INVALID_ARGUMENT:
      case grpc.status.ABORTED:
      case grpc.status.NOT_FOUND:
        throw new CliExit(EXIT.usage, e.details);
      default:
        throw err;
    }
  } finally {
    client.close();
  }
}

/** The client waits a little longer than the server, so the server's own timeout message wins. */
const CLIENT_MARGIN_MS = 5_000;

/** `metadata`: the command span's trace context (see tracedCommand), so the revision is in its trace. */
export const applyChangeSet = (
  target: MeshTarget,
  req: ApplyRequest,
  opts: { metadata?: grpc.Metadata } = {},
): Promise<ApplyResponse> =>
  callChangeSets(target, 'apply', req, req.timeoutMs + CLIENT_MARGIN_MS, opts.metadata);

export const listHistory = (
  target: MeshTarget,
  req: ListHistoryRequest,
): Promise<ListHistoryResponse> => callChangeSets(target, 'listHistory', req, 10_000);
