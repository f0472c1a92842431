// mTLS for the mesh: SPIFFE identities in certificates, issuance with the
// openssl CLI, and gRPC credentials. Identity checks are pure (spiffe.ts, peer.ts).
export {
  SPIFFE_TRUST_DOMAIN,
  adminSpiffeId,
  adminUserName,
  isCertificateName,
  nodeSpiffeId,
  parseMeshSpiffeId,
  sanUris,
  type MeshPeer,
} from './spiffe.js';
export { authorizeAdmin, authorizeNodeStream, meshPeerOf, type PeerAuthContext } from './peer.js';
export {
  issueCa,
  issueCertificate,
  type CertificateFiles,
  type CertificateRequest,
} from './issue.js';
export {
  meshTlsLayout,
  writeMeshTls,
  type MeshTls,
  type MeshTlsPlan,
  type TlsFiles,
} from './mesh-tls.js';
export {
  CONTROL_PLANE_SERVER_NAME,
  clientTransport,
  readTlsMaterial,
  serverCredentials,
  type ClientTransport,
  type TlsMaterial,
} from './credentials.js';
