import * as grpc from '@grpc/grpc-js';
import { MeshAdminClient, StatusRequest, type StatusResponse } from '../proto/index.js';
import { CliExit, EXIT } from './exit-codes.js';

/** Calls the admin API; an unreachable control plane is exit code 3. */
export async function fetchStatus(
  address: string,
  opts: { timeoutMs?: number } = {},
): Promise<StatusResponse> {
  const client = new MeshAdminClient(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<StatusResponse>((resolve, reject) => {
      client.status(
        StatusRequest.create(),
        new grpc.Metadata(),
        { deadline: Date.now() + (opts.timeoutMs ?? 5000) },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
      throw new CliExit(
        EXIT.unreachable,
        `control plane at ${address} is unreachable: ${e.details || e.message}`,
      );
    }
    throw err;
  } finally {
    client.close();
  }
}
