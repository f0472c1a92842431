import { MeshError } from '../errors.js';
import { parseMeshSpiffeId, sanUris, type MeshPeer } from './spiffe.js';

/**
 * The part of a gRPC call's auth context this needs (grpc-js `AuthContext`:
 * `call.getAuthContext()`); structural so this module stays free of gRPC.
 * A verified peer certificate is present only on an mTLS connection.
 */
export interface PeerAuthContext {
  sslPeerCertificate?: { subjectaltname?: string } | undefined;
}

/**
 * The single mesh identity of the connection's verified client certificate;
 * undefined without one. A certificate naming several mesh identities names
 * none: it is not one we issued, and picking one would be a guess.
 */
export function meshPeerOf(auth: PeerAuthContext | null | undefined): MeshPeer | undefined {
  const peers = sanUris(auth?.sslPeerCertificate?.subjectaltname)
    .map(parseMeshSpiffeId)
    .filter((p) => p !== undefined);
  return peers.length === 1 ? peers[0] : undefined;
}

/**
 * Refuses a discovery stream unless the certificate is that node's own:
 * UNAUTHENTICATED without a mesh identity, PERMISSION_DENIED for any other.
 */
export function authorizeNodeStream(
  auth: PeerAuthContext | null | undefined,
  cluster: string,
  node: string,
): MeshPeer {
  const peer = meshPeerOf(auth);
  if (peer === undefined) {
    throw new MeshError(
      'UNAUTHENTICATED',
      `no mesh certificate: the snapshot of node ${cluster}/${node} is served only to that node's certificate`,
    );
  }
  if (peer.kind !== 'node' || peer.cluster !== cluster || peer.node !== node) {
    throw new MeshError(
      'PERMISSION_DENIED',
      `certificate ${peer.uri} may not fetch the snapshot of node ${cluster}/${node}`,
    );
  }
  return peer;
}

/** Refuses an admin call unless the certificate is an operator's. */
export function authorizeAdmin(auth: PeerAuthContext | null | undefined, method: string): MeshPeer {
  const peer = meshPeerOf(auth);
  if (peer === undefined) {
    throw new MeshError(
      'UNAUTHENTICATED',
      `${method} needs an admin client certificate of this mesh`,
    );
  }
  if (peer.kind !== 'admin') {
    throw new MeshError(
      'PERMISSION_DENIED',
      `certificate ${peer.uri} may not call ${method}: the admin API needs a spiffe://meshplane/admin/<user> certificate`,
    );
  }
  return peer;
}
