import {
  PROTOCOL_VERSION,
  DeltaDiscoveryRequest,
  type DatapathCapacity,
  type ErrorDetail,
  type Node,
  type ResourceVersion,
} from '../../proto/index.js';

/** The first request of a stream: who we are, what we speak, what we can hold, what we hold. */
export function firstRequest(
  node: Node,
  capacity: DatapathCapacity,
  held: ResourceVersion[],
): DeltaDiscoveryRequest {
  return DeltaDiscoveryRequest.fromPartial({
    node,
    protocolVersion: PROTOCOL_VERSION,
    capacity,
    initialResourceVersions: held,
  });
}

export function ackRequest(a: {
  nonce: string;
  revision: number;
  durationUs: number;
  digest: string;
}): DeltaDiscoveryRequest {
  return DeltaDiscoveryRequest.fromPartial({
    responseNonce: a.nonce,
    appliedRevision: a.revision,
    applyDurationUs: a.durationUs,
    digest: a.digest,
  });
}

/** `heldRevision`/`digest`: the last good state the agent still enforces. */
export function nackRequest(n: {
  nonce: string;
  heldRevision: number;
  digest: string;
  error: ErrorDetail;
}): DeltaDiscoveryRequest {
  return DeltaDiscoveryRequest.fromPartial({
    responseNonce: n.nonce,
    errorDetail: n.error,
    appliedRevision: n.heldRevision,
    digest: n.digest,
  });
}

export function verificationRequest(v: {
  revision: number;
  digest: string;
}): DeltaDiscoveryRequest {
  return DeltaDiscoveryRequest.fromPartial({
    verification: true,
    appliedRevision: v.revision,
    digest: v.digest,
  });
}
