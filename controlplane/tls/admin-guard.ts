import * as grpc from '@grpc/grpc-js';
import { MeshError, type Logger } from '../../common/index.js';
import { authorizeAdmin } from '../../common/tls/index.js';

/**
 * A server interceptor that lets only operators' certificates
 * (spiffe://meshplane/admin/<user>) call the methods of `service` (the admin
 * API): a node agent's certificate, valid as it is for discovery, must not
 * join clusters or read the whole mesh. Other services pass through untouched
 * (discovery checks its caller against the node it asks for).
 */
export function adminGuard(service: grpc.ServiceDefinition, log: Logger): grpc.ServerInterceptor {
  const guarded = new Set(Object.values(service).map((m) => m.path));
  return (method, call) => {
    if (!guarded.has(method.path)) return new grpc.ServerInterceptingCall(call);
    let refusal: MeshError | undefined;
    try {
      authorizeAdmin(call.getAuthContext(), method.path);
    } catch (err) {
      if (!(err instanceof MeshError)) throw err;
      refusal = err;
    }
    if (refusal === undefined) return new grpc.ServerInterceptingCall(call);
    const { code, message } = refusal;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          // Refuse before the handler sees the request.
          onReceiveMetadata: () => {
            log.warn('admin call refused', { method: method.path, error: message });
            call.sendStatus({
              code:
                code === 'PERMISSION_DENIED'
                  ? grpc.status.PERMISSION_DENIED
                  : grpc.status.UNAUTHENTICATED,
              details: message,
            });
          },
        }),
    });
  };
}
