// Transport security of the control plane's gRPC server (see common/tls for identities and issuance).
export { adminGuard } from './admin-guard.js';
