import type * as grpc from '@grpc/grpc-js';
import type { MeshAdminServer, StatusRequest, StatusResponse } from '../../proto/index.js';
import { buildStatus, type StatusDeps } from './status.js';

/** The admin API meshctl uses. */
export function adminService(deps: StatusDeps): MeshAdminServer {
  return {
    status: (
      _call: grpc.ServerUnaryCall<StatusRequest, StatusResponse>,
      callback: grpc.sendUnaryData<StatusResponse>,
    ) => {
      callback(null, buildStatus(deps));
    },
  };
}
